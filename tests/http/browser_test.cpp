// End to end in a real browser: the bank sample's server and its page in headless
// Chromium (Debian `chromium`), driven over the DevTools protocol (a small client on
// Beast's websocket). A deposit made on the page must show up on the page.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "http/http_client.hpp"

using json = nlohmann::json;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// A child process, stopped (SIGTERM, then SIGKILL) and reaped on destruction.
struct child {
  pid_t pid = -1;
  child(const std::vector<std::string>& argv, int stdout_fd = -1, bool quiet = false) {
    pid = ::fork();
    if (pid == 0) {
      if (stdout_fd >= 0) ::dup2(stdout_fd, 1);
      if (quiet) { // Chromium logs much that does not matter here (no D-Bus, no GPU)
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~child() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
      std::this_thread::sleep_for(100ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

/// A DevTools protocol connection to one page.
class devtools {
public:
  devtools(unsigned short port, const std::string& path) : ws_(io_) {
    asio::ip::tcp::resolver resolver{io_};
    asio::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.handshake("127.0.0.1:" + std::to_string(port), path);
  }
  json call(const std::string& method, json params = json::object()) {
    auto id = ++next_id_;
    ws_.write(asio::buffer(json{{"id", id}, {"method", method}, {"params", params}}.dump()));
    for (;;) {
      beast::flat_buffer buf;
      ws_.read(buf);
      auto msg = json::parse(beast::buffers_to_string(buf.data()));
      if (msg.contains("id") && msg["id"] == id) {
        if (msg.contains("error")) throw std::runtime_error(msg["error"].dump());
        return msg["result"];
      }
    }
  }
  /// Evaluates `expr` in the page and returns its value.
  json eval(const std::string& expr) {
    auto r = call("Runtime.evaluate", {{"expression", expr}, {"returnByValue", true},
                                       {"awaitPromise", true}});
    return r["result"].value("value", json{});
  }
  /// Evaluates `expr` until it is true (or the time is up).
  bool wait_for(const std::string& expr, std::chrono::seconds limit = 30s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (eval(expr) == true) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

private:
  asio::io_context io_;
  beast::websocket::stream<asio::ip::tcp::socket> ws_;
  int next_id_ = 0;
};

/// Starts bank_server on a free port and returns the port from its first line.
unsigned short start_server(std::unique_ptr<child>& server) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  server = std::make_unique<child>(
    std::vector<std::string>{CAIRN_BANK_SERVER, "--store=memory", "--accounts=5",
                             "--cairn.http.port=0", "--cairn.log-level=warn"},
    out[1]);
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  INFO("bank_server said: " << line);
  auto colon = line.rfind(':');
  REQUIRE(colon != std::string::npos);
  return static_cast<unsigned short>(std::stoi(line.substr(colon + 1)));
}

} // namespace

TEST_CASE("browser: a deposit made on the bank page shows up on the page") {
  std::unique_ptr<child> server;
  auto port = start_server(server);
  auto base = "http://127.0.0.1:" + std::to_string(port) + "/";
  REQUIRE(cairn::http_test::request(port, "GET", "/").status == 200);

  auto profile = fs::temp_directory_path() / ("cairn-chromium-" + std::to_string(::getpid()));
  fs::remove_all(profile);
  fs::create_directories(profile);
  {
    child browser{{"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                   "--remote-debugging-port=0", "--user-data-dir=" + profile.string(),
                   "about:blank"},
                  -1, true};
    // Chromium writes its DevTools port to the profile folder.
    unsigned short dt_port = 0;
    for (int i = 0; i < 300 && dt_port == 0; ++i) {
      std::ifstream f{profile / "DevToolsActivePort"};
      int p = 0;
      if (f >> p) dt_port = static_cast<unsigned short>(p);
      else std::this_thread::sleep_for(100ms);
    }
    REQUIRE(dt_port != 0);
    json targets;
    for (int i = 0; i < 100; ++i) {
      auto list = cairn::http_test::request(dt_port, "GET", "/json/list");
      if (list.status == 200) targets = json::parse(list.body);
      bool has_page = false;
      for (auto& t : targets) has_page = has_page || t["type"] == "page";
      if (has_page) break;
      std::this_thread::sleep_for(100ms);
    }
    std::string ws_path;
    for (auto& t : targets)
      if (t["type"] == "page") {
        auto url = t["webSocketDebuggerUrl"].get<std::string>();
        ws_path = url.substr(url.find('/', std::string{"ws://"}.size()));
        break;
      }
    REQUIRE_FALSE(ws_path.empty());

    devtools page{dt_port, ws_path};
    page.call("Page.navigate", {{"url", base}});
    // The page is live: the stream is open and the read models are shown.
    CHECK(page.wait_for("document.getElementById('status').textContent === 'live' && "
                        "document.querySelectorAll('#top li').length === 5 && "
                        "document.getElementById('accounts').textContent === '5'"));
    // A user deposits 777 into acct-3 through the form.
    page.eval("document.getElementById('account').value = 'acct-3';"
              "document.getElementById('amount').value = '777';"
              "document.getElementById('deposit').click(); true");
    // The page shows it: the form's result, the live event log, the top list and the total.
    CHECK(page.wait_for("document.getElementById('result').textContent.startsWith('deposit stored')"));
    CHECK(page.wait_for("[...document.querySelectorAll('#log li')].some("
                        "li => li.textContent.endsWith('account-acct-3 deposited 777'))"));
    CHECK(page.wait_for("(() => { const top = document.querySelector('#top li');"
                        " return top && top.dataset.account === 'acct-3' &&"
                        " top.dataset.balance === '777'; })()"));
    CHECK(page.wait_for("document.getElementById('total').textContent === '777'"));
    // A withdrawal beyond the balance is refused, and the page says why.
    page.eval("document.getElementById('amount').value = '5000';"
              "document.getElementById('withdraw').click(); true");
    CHECK(page.wait_for("document.getElementById('result').textContent === "
                        "'422 rejected: insufficient funds'"));
  }
  // And the server agrees.
  auto balance = cairn::http_test::request(port, "GET", "/queries/balance?account=acct-3");
  CHECK(json::parse(balance.body)["balance"] == 777);
  fs::remove_all(profile);
}
