// Consumer program on cairn::kafka: starts librdkafka's in-process mock cluster
// through cairn and creates a topic on it; exits 0 if both work.
#include <cairn/kafka_mock.hpp>

#include <iostream>

int main() {
  auto cluster = cairn::kafka_mock_cluster::start(1);
  if (!cluster) {
    std::cerr << "mock cluster: " << cluster.error().describe() << '\n';
    return 1;
  }
  if (auto ok = (*cluster)->create_topic("consumer-events", 1, 1); !ok) {
    std::cerr << "create_topic: " << ok.error().describe() << '\n';
    return 1;
  }
  std::cout << "cairn::kafka mock cluster at " << (*cluster)->bootstrap() << '\n';
  return 0;
}
