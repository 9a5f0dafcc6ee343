// A writer for the cairn CLI tests: appends events to, or holds the lock of, a data folder.
//
//   cli_store_helper append DIR STREAM COUNT   append COUNT "tick" events to STREAM, exit
//   cli_store_helper hold DIR                  open DIR for writing, print "holding", wait
//                                              until killed (holds the writer lock)
//   cli_store_helper unfaithful DIR            append one event whose metadata JSON cannot
//                                              hold exactly (a repeated key, non-UTF-8 text)
//   cli_store_helper maxrss PROGRAM ARGS...    run PROGRAM, then print its peak resident
//                                              memory to stderr ("cli_store_helper:
//                                              maxrss_kib=N"); exits as PROGRAM did
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <cairn/file_journal.hpp>

namespace {

int usage() {
  std::cerr << "usage: cli_store_helper append DIR STREAM COUNT | hold DIR | unfaithful DIR | "
               "maxrss PROGRAM ARGS...\n";
  return 2;
}

std::shared_ptr<cairn::journal> open_or_die(const std::string& dir) {
  cairn::file_journal_options options;
  options.sync = cairn::sync_policy::never;
  auto j = cairn::open_file_journal(dir, options);
  if (!j) {
    std::cerr << "cli_store_helper: " << j.error().describe() << '\n';
    std::exit(1);
  }
  return *j;
}

} // namespace

int run_measured(char** argv) {
  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::execv(argv[0], argv);
    std::perror("cli_store_helper: exec");
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  while (::wait4(child, &status, 0, &usage) < 0)
    if (errno != EINTR) return 1;
  std::cerr << "cli_store_helper: maxrss_kib=" << usage.ru_maxrss << std::endl;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "maxrss") return run_measured(argv + 2);
  if (argc < 3) return usage();
  std::string command = argv[1], dir = argv[2];
  if (command == "append" && argc == 5) {
    auto stream = cairn::stream_id::parse(argv[3]);
    if (!stream) return usage();
    auto j = open_or_die(dir);
    int count = std::atoi(argv[4]);
    for (int i = 0; i < count; ++i) {
      cairn::event_data e{"tick", 1, {"helper", "", {{"n", std::to_string(i)}}},
                          {0x01, static_cast<uint8_t>(2 * i)}};
      auto r = j->append_one({*stream, cairn::expected_version::any, {e}});
      if (!r) {
        std::cerr << "cli_store_helper: " << r.error().describe() << '\n';
        return 1;
      }
    }
    return 0;
  }
  if (command == "hold" && argc == 3) {
    auto j = open_or_die(dir);
    std::cout << "holding" << std::endl;
    for (;;) ::pause(); // until a signal ends the process
  }
  if (command == "unfaithful" && argc == 3) {
    auto j = open_or_die(dir);
    cairn::event_data e{"odd", 1, {"", "", {{"k", "1"}, {"k", "2"}}}, {}};
    cairn::event_data f{"odd", 1, {"", "", {{"bytes", std::string("\xff\xfe", 2)}}}, {}};
    auto r = j->append_one({cairn::stream_id{"odd", "1"}, cairn::expected_version::any, {e, f}});
    if (!r) {
      std::cerr << "cli_store_helper: " << r.error().describe() << '\n';
      return 1;
    }
    return 0;
  }
  return usage();
}
