// A minimal blocking HTTP/1.1 client on raw sockets for the HTTP tests: it sends
// exactly the bytes a test asks for (so bad input can be crafted) and reads replies.
#pragma once

#include <map>
#include <string>

namespace cairn::http_test {

struct response {
  int status = 0; ///< 0: no response (the server closed or timed out)
  std::map<std::string, std::string> headers; ///< names lower-cased
  std::string body;
};

/// A connected socket to 127.0.0.1:port (-1 on failure); receive timeout `timeout_ms`.
int connect_to(unsigned short port, int timeout_ms = 10000);

/// Sends all of `data`; false on error.
bool send_all(int fd, const std::string& data);

/// Reads one response (Content-Length bodies, or until the server closes).
response read_response(int fd);

/// True if the server closed the connection (read returns 0 or an error) within
/// `timeout_ms`, discarding anything it sent first.
bool closed_within(int fd, int timeout_ms);

/// One request on a new connection: method, target, body, extra header lines
/// ("Name: value\r\n" each); the connection is closed afterwards.
response request(unsigned short port, const std::string& method, const std::string& target,
                 const std::string& body = "", const std::string& headers = "",
                 const std::string& content_type = "application/json");

/// Sends raw bytes on a new connection and reads one response.
response raw(unsigned short port, const std::string& bytes);

} // namespace cairn::http_test
