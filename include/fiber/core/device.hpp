#pragma once
// Where a tensor's memory lives. CPU everywhere; CUDA only in builds compiled by nvcc.
#include <ostream>

namespace fiber {

enum class DeviceKind : unsigned char { cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;

  static constexpr Device cpu() { return {DeviceKind::cpu, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceKind::cuda, i}; }
  constexpr bool is_cpu() const { return kind == DeviceKind::cpu; }
  friend constexpr bool operator==(const Device&, const Device&) = default;
  friend std::ostream& operator<<(std::ostream& out, const Device& d) {
    return d.is_cpu() ? out << "cpu" : out << "cuda:" << d.index;
  }
};

}  // namespace fiber
