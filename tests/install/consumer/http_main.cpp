// Consumer program on cairn::http: serves a node over HTTP on loopback and asks it
// GET /health over a plain socket; exits 0 on a 200 with {"status":"ok"}.
#include <cairn/http_server.hpp>
#include <cairn/memory_journal.hpp>
#include <cairn/test_node.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <string>

int main() {
  cairn::testkit::test_node node{1, cairn::make_memory_journal(),
                                 cairn::testkit::test_node::quiet()};
  cairn::http_options opts;
  opts.enabled = true;
  opts.port = 0;
  cairn::http_server http{*node, opts};
  if (auto ok = http.start(); !ok) {
    std::cerr << "http start failed: " << ok.error().describe() << '\n';
    return 1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(http.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::cerr << "cannot connect to port " << http.port() << '\n';
    return 1;
  }
  const std::string req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) return 1;
  std::string answer;
  char buf[1024];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<size_t>(n));
  ::close(fd);
  http.stop();
  if (answer.rfind("HTTP/1.1 200", 0) != 0 || answer.find("\"status\":\"ok\"") == std::string::npos) {
    std::cerr << "unexpected answer to GET /health:\n" << answer << '\n';
    return 1;
  }
  std::cout << "cairn::http served GET /health\n";
  return 0;
}
