#include <occams_rpc/core/buffer.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <string_view>
#include <utility>

using namespace occams_rpc;
using namespace std::string_view_literals;

TEST_CASE("a new byte_buffer is empty and owns no memory", "[core]") {
  byte_buffer b;
  CHECK(b.empty());
  CHECK(b.size() == 0);
  CHECK(b.capacity() == 0);
  CHECK(b.view().empty());
}

TEST_CASE("a byte_buffer built with a capacity reserves at least that much", "[core]") {
  byte_buffer b(1000);
  CHECK(b.capacity() >= 1000);
  CHECK(b.empty());
}

TEST_CASE("append adds bytes at the end and grows the buffer", "[core]") {
  byte_buffer b;
  b.append("hello"sv);
  b.append(std::span<const char>(" wor", 4));
  b.append("ld!", 2);
  b.append(nullptr, 0);  // nothing to add: a no-op
  CHECK(b.view() == "hello world");
  CHECK(b.size() == 11);
  CHECK(std::string(b.span().begin(), b.span().end()) == "hello world");

  std::string big(100'000, 'x');
  b.append(std::string_view(big));
  CHECK(b.size() == 11 + big.size());
  CHECK(b.capacity() >= b.size());
  CHECK(b.view().substr(0, 11) == "hello world");
  CHECK(b.view().substr(11) == big);
}

TEST_CASE("write appends like msgpack's stream concept expects", "[core]") {
  byte_buffer b;
  b.write("ab", 2);
  b.write("cd", 2);
  CHECK(b.view() == "abcd");
}

TEST_CASE("prepare gives room that commit turns into contents", "[core]") {
  byte_buffer b;
  b.append("ab"sv);
  char* room = b.prepare(100);
  CHECK(b.capacity() >= 102);
  CHECK(b.size() == 2);  // prepare alone does not change the contents
  std::memcpy(room, "cdef", 4);
  b.commit(3);
  CHECK(b.view() == "abcde");
  // Preparing less than the free room does not reallocate.
  const char* before = b.data();
  b.prepare(10);
  CHECK(b.data() == before);
}

TEST_CASE("consume drops bytes from the front and keeps the rest", "[core]") {
  byte_buffer b;
  b.append("0123456789"sv);
  b.consume(3);
  CHECK(b.view() == "3456789");
  b.consume(0);
  CHECK(b.view() == "3456789");
  b.consume(7);
  CHECK(b.empty());
  b.append("abc"sv);
  b.consume(100);  // more than there is: empties the buffer
  CHECK(b.empty());
}

TEST_CASE("truncate only ever shortens the contents", "[core]") {
  byte_buffer b;
  b.append("abcdef"sv);
  b.truncate(10);
  CHECK(b.view() == "abcdef");
  b.truncate(4);
  CHECK(b.view() == "abcd");
  b.truncate(0);
  CHECK(b.empty());
}

TEST_CASE("clear forgets the contents but keeps the memory", "[core]") {
  byte_buffer b;
  b.append(std::string_view(std::string(5000, 'z')));
  auto cap = b.capacity();
  const char* mem = b.data();
  b.clear();
  CHECK(b.empty());
  CHECK(b.capacity() == cap);
  b.append("x"sv);
  CHECK(b.data() == mem);
}

TEST_CASE("shrink_to frees memory that grew above the limit and keeps the contents", "[core]") {
  byte_buffer b;
  b.append(std::string_view(std::string(100'000, 'z')));
  b.clear();
  b.append("keep"sv);
  b.shrink_to(4096);
  CHECK(b.capacity() <= 4096);
  CHECK(b.view() == "keep");
}

TEST_CASE("shrink_to is idempotent: a second call with the same limit does not reallocate", "[core]") {
  // A limit that is not a power of two: the buffer must not end up above it again, or every
  // periodic shrink_to would reallocate.
  byte_buffer b;
  b.append(std::string_view(std::string(50'000, 'z')));
  b.truncate(10);
  b.shrink_to(10'000);
  CHECK(b.capacity() <= 10'000);
  CHECK(b.view() == std::string(10, 'z'));
  const char* mem = b.data();
  b.shrink_to(10'000);
  CHECK(b.data() == mem);
}

TEST_CASE("shrink_to leaves a buffer alone when it is small or its contents exceed the limit", "[core]") {
  byte_buffer small(256);
  const char* mem = small.data();
  small.shrink_to(4096);
  CHECK(small.data() == mem);

  byte_buffer full;
  full.append(std::string_view(std::string(10'000, 'q')));
  auto cap = full.capacity();
  full.shrink_to(1000);  // the contents do not fit the limit
  CHECK(full.capacity() == cap);
  CHECK(full.size() == 10'000);
}

TEST_CASE("copying a byte_buffer copies the contents into new memory", "[core]") {
  byte_buffer a;
  a.append("payload"sv);
  byte_buffer b(a);
  CHECK(b.view() == "payload");
  CHECK(b.data() != a.data());

  byte_buffer c;
  c.append("old contents that are longer"sv);
  c = a;
  CHECK(c.view() == "payload");
  a.append("!"sv);
  CHECK(c.view() == "payload");  // independent

  auto& self = c;
  c = self;  // self-assignment keeps the contents
  CHECK(c.view() == "payload");

  byte_buffer empty;
  byte_buffer d(empty);
  CHECK(d.empty());
}

TEST_CASE("moving a byte_buffer steals its memory and leaves the source empty", "[core]") {
  byte_buffer a;
  a.append("payload"sv);
  const char* mem = a.data();
  byte_buffer b(std::move(a));
  CHECK(b.view() == "payload");
  CHECK(b.data() == mem);
  CHECK(a.empty());           // NOLINT(bugprone-use-after-move): documented state
  CHECK(a.capacity() == 0);   // NOLINT(bugprone-use-after-move)

  byte_buffer c;
  c.append("other"sv);
  c = std::move(b);
  CHECK(c.view() == "payload");
  CHECK(c.data() == mem);
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)

  // A moved-from buffer is usable again.
  b.append("again"sv);
  CHECK(b.view() == "again");
}
