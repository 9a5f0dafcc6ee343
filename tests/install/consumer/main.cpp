// Consumer program: appends one event to an in-memory journal and exits 0 if it reads it back.
#include <cairn/journal.hpp>
#include <cairn/memory_journal.hpp>

#include <iostream>

int main() {
  auto journal = cairn::make_memory_journal();

  cairn::event_data event;
  event.type = "opened";
  event.payload = {'h', 'i'};

  cairn::append_request request;
  request.stream = cairn::stream_id{"account", "42"};
  request.expected_version = cairn::expected_version::no_stream;
  request.events.push_back(event);

  auto appended = journal->append_one(request);
  if (!appended) {
    std::cerr << "append failed: " << appended.error() << '\n';
    return 1;
  }

  auto read = journal->read_stream(request.stream, 1, 10);
  if (!read) {
    std::cerr << "read failed: " << read.error() << '\n';
    return 1;
  }
  if (read->size() != 1 || read->front().version != 1 || read->front().type != event.type ||
      read->front().payload != event.payload) {
    std::cerr << "read back " << read->size() << " events, not the one appended\n";
    return 1;
  }

  std::cout << "cairn consumer: appended and read back " << read->front().stream << " v"
            << read->front().version << '\n';
  return 0;
}
