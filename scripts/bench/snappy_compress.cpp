// stdin -> stdout in the snappy block format (Prometheus remote write's body encoding),
// for scripts/bench/protocols.
#include <snappy.h>

#include <iostream>
#include <iterator>
#include <string>

int main() {
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>()), out;
  snappy::Compress(in.data(), in.size(), &out);
  std::cout.write(out.data(), static_cast<std::streamsize>(out.size()));
  return std::cout ? 0 : 1;
}
