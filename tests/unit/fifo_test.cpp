// The session's queues: first in, first out, bounded memory however they are used.
#include <catch2/catch.hpp>
#include <string>

#include "server/fifo.hpp"

using backcheck::server::Fifo;

TEST_CASE("a Fifo hands items back in the order they came, with indexing from the front", "[fifo]") {
  Fifo<std::string> q;
  CHECK(q.empty());
  for (int i = 0; i < 5; ++i) q.push_back("frame " + std::to_string(i));
  CHECK(q.size() == 5);
  CHECK(q[2] == "frame 2");
  for (int i = 0; i < 5; ++i) {
    CHECK(q.front() == "frame " + std::to_string(i));
    q.pop_front();
  }
  CHECK(q.empty());
}

TEST_CASE("a Fifo that never drains keeps its order and does not grow without bound", "[fifo]") {
  // The session's steady state under load: one frame waiting while the next arrives.
  Fifo<int> q;
  q.push_back(0);
  for (int i = 1; i < 100000; ++i) {
    q.push_back(i);
    REQUIRE(q.front() == i - 1);
    q.pop_front();
    REQUIRE(q.size() == 1);
    REQUIRE(q.capacity() <= 4);
  }
  CHECK(q.front() == 99999);
}

TEST_CASE("interleaved pushes and pops keep the order across compactions", "[fifo]") {
  Fifo<int> q;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    for (int k = 0; k < round % 7 + 1; ++k) q.push_back(next_in++);
    for (int k = 0; k < round % 5 + 1 && !q.empty(); ++k) {
      REQUIRE(q.front() == next_out++);
      q.pop_front();
    }
    REQUIRE(q.size() == static_cast<std::size_t>(next_in - next_out));
  }
  q.clear();
  CHECK(q.empty());
  CHECK(q.capacity() <= 4);  // a burst's memory goes back once the queue is empty
}
