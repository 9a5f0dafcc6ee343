// The HTTP tests' raw-socket client.
#include "http/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>

namespace cairn::http_test {

int connect_to(unsigned short port, int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

response read_response(int fd) {
  response r;
  std::string buf;
  char chunk[4096];
  size_t header_end = std::string::npos;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return r;
    buf.append(chunk, static_cast<size_t>(n));
  }
  auto head = buf.substr(0, header_end);
  auto sp = head.find(' ');
  if (sp == std::string::npos) return r;
  r.status = std::atoi(head.c_str() + sp + 1);
  size_t line = head.find("\r\n");
  while (line != std::string::npos && line < head.size()) {
    auto next = head.find("\r\n", line + 2);
    auto text = head.substr(line + 2, next == std::string::npos ? std::string::npos : next - line - 2);
    auto colon = text.find(':');
    if (colon != std::string::npos) {
      std::string name = text.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto value = text.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    line = next;
  }
  r.body = buf.substr(header_end + 4);
  auto cl = r.headers.find("content-length");
  if (cl != r.headers.end()) {
    auto want = static_cast<size_t>(std::stoull(cl->second));
    while (r.body.size() < want) {
      auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      r.body.append(chunk, static_cast<size_t>(n));
    }
  } else {
    for (;;) {
      auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      r.body.append(chunk, static_cast<size_t>(n));
    }
  }
  return r;
}

bool closed_within(int fd, int timeout_ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{timeout_ms};
  char chunk[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    auto n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n <= 0) return true;
  }
}

response request(unsigned short port, const std::string& method, const std::string& target,
                 const std::string& body, const std::string& headers,
                 const std::string& content_type) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                    headers;
  if (!body.empty() || method == "POST")
    req += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  req += "\r\n" + body;
  return raw(port, req);
}

response raw(unsigned short port, const std::string& bytes) {
  int fd = connect_to(port);
  if (fd < 0) return {};
  response r;
  if (send_all(fd, bytes)) r = read_response(fd);
  ::close(fd);
  return r;
}

} // namespace cairn::http_test
