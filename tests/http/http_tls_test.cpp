// Access over TLS with client certificates: a client whose certificate chains to the
// configured CA is served; one without a certificate, or with one from another CA,
// is refused at the handshake and nothing it sent is done. Certificates are made
// for the test with the `openssl` command (Debian `openssl`).
#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "http/http_fixture.hpp"

using namespace cairn;
using namespace cairn::http_test;
namespace fs = std::filesystem;

namespace {

struct certificates {
  fs::path dir = fs::temp_directory_path() / ("cairn-tls-" + std::to_string(::getpid()));
  certificates() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string d = dir.string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto run = [](const std::string& cmd) {
      REQUIRE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0);
    };
    // A CA, a server and a client certificate signed by it, and a rogue self-signed client.
    run("openssl req -x509 " + key + " -keyout " + d + "/ca.key -out " + d +
        "/ca.pem -days 2 -subj /CN=cairn-test-ca");
    for (std::string who : {"server", "client"}) {
      run("openssl req " + key + " -keyout " + d + "/" + who + ".key -out " + d + "/" + who +
          ".csr -subj /CN=127.0.0.1");
      run("openssl x509 -req -in " + d + "/" + who + ".csr -CA " + d + "/ca.pem -CAkey " + d +
          "/ca.key -CAcreateserial -out " + d + "/" + who + ".pem -days 2");
    }
    run("openssl req -x509 " + key + " -keyout " + d + "/rogue.key -out " + d +
        "/rogue.pem -days 2 -subj /CN=rogue");
  }
  ~certificates() { fs::remove_all(dir); }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

/// One request over TLS, presenting `who`'s certificate (none if empty). Returns the
/// status, or 0 if the handshake or the exchange failed.
int tls_request(unsigned short port, const certificates& certs, const std::string& who,
                const std::string& request) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_load_verify_locations(ctx, certs.file("ca.pem").c_str(), nullptr);
  if (!who.empty()) {
    SSL_CTX_use_certificate_file(ctx, certs.file(who + ".pem").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx, certs.file(who + ".key").c_str(), SSL_FILETYPE_PEM);
  }
  int status = 0;
  int fd = connect_to(port, 5000);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (fd >= 0 && SSL_connect(ssl) == 1 &&
      SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
    std::string got;
    char buf[4096];
    int n;
    // With TLS 1.3 a refused client certificate shows up at the first read.
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    if (got.rfind("HTTP/1.1 ", 0) == 0) status = std::atoi(got.c_str() + 9);
  }
  SSL_free(ssl);
  if (fd >= 0) ::close(fd);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return status;
}

} // namespace

TEST_CASE("http access: TLS client certificates let in only clients of the configured CA") {
  certificates certs;
  auto o = bank_server::local();
  o.address = "0.0.0.0"; // exposed: the client certificates are its credentials
  o.tls_cert_file = certs.file("server.pem");
  o.tls_key_file = certs.file("server.key");
  o.tls_client_ca_file = certs.file("ca.pem");
  bank_server s{o};
  const std::string body = R"({"type":"open","data":{"owner":"T"}})";
  const std::string post = "POST /commands/account/tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Content-Type: application/json\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body;
  CHECK(tls_request(s.port(), certs, "", post) == 0);
  CHECK(tls_request(s.port(), certs, "rogue", post) == 0);
  CHECK(raw(s.port(), post).status == 0); // plain HTTP on the TLS port
  CHECK(s.node.store().head_position() == 0);
  CHECK(tls_request(s.port(), certs, "client", post) == 200);
  CHECK(s.node.store().head_position() == 1);
  CHECK(tls_request(s.port(), certs, "client",
                    "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 200);
}
