// CRC-32C: slicing-by-8 tables, and the SSE4.2 instruction chosen at run time on x86-64.
#include "crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define CAIRN_CRC32C_X86 1
#endif

namespace cairn::detail {
namespace {

constexpr uint32_t polynomial = 0x82F63B78u; // reflected Castagnoli polynomial

using table_set = std::array<std::array<uint32_t, 256>, 8>;

constexpr table_set make_tables() {
  table_set t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ polynomial : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  return t;
}

constexpr table_set tables = make_tables();

inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

/// Works on the inverted CRC register (no initial/final xor).
uint32_t portable_update(uint32_t c, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint32_t lo = load_le32(p) ^ c, hi = load_le32(p + 4);
    c = tables[7][lo & 0xff] ^ tables[6][(lo >> 8) & 0xff] ^ tables[5][(lo >> 16) & 0xff] ^
        tables[4][lo >> 24] ^ tables[3][hi & 0xff] ^ tables[2][(hi >> 8) & 0xff] ^
        tables[1][(hi >> 16) & 0xff] ^ tables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ tables[0][(c ^ *p++) & 0xff];
  return c;
}

#ifdef CAIRN_CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t hardware_update(uint32_t c, const uint8_t* p,
                                                           size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8); // x86 is little-endian, as CRC-32C's byte order wants
    c64 = _mm_crc32_u64(c64, word);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (n--) c = _mm_crc32_u8(c, *p++);
  return c;
}

bool detect_hardware() noexcept {
  __builtin_cpu_init(); // may run before the constructors that usually do this
  return __builtin_cpu_supports("sse4.2");
}
#else
bool detect_hardware() noexcept { return false; }
#endif

bool hardware() noexcept {
  static const bool available = detect_hardware();
  return available;
}

} // namespace

uint32_t crc32c_portable(const void* data, size_t size, uint32_t crc) noexcept {
  return ~portable_update(~crc, static_cast<const uint8_t*>(data), size);
}

uint32_t crc32c(const void* data, size_t size, uint32_t crc) noexcept {
#ifdef CAIRN_CRC32C_X86
  if (hardware()) return ~hardware_update(~crc, static_cast<const uint8_t*>(data), size);
#endif
  return crc32c_portable(data, size, crc);
}

bool crc32c_hardware_available() noexcept { return hardware(); }

} // namespace cairn::detail
