// CRC-32C (Castagnoli), the checksum of every file journal record and index file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cairn::detail {

/// CRC-32C of `size` bytes at `data`, continuing from `crc` (0 to start): the
/// standard CRC-32C (reflected polynomial 0x82F63B78, initial value and final xor
/// 0xFFFFFFFF), so crc32c("123456789") == 0xE3069283. Uses the SSE4.2 crc32
/// instruction when the CPU has it (checked once at run time), else a portable
/// slicing-by-8 table implementation. Both give identical results.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0) noexcept;

/// The portable implementation, always available (for tests and benchmarks).
uint32_t crc32c_portable(const void* data, size_t size, uint32_t crc = 0) noexcept;

/// True if crc32c() uses the CPU's crc32 instruction.
bool crc32c_hardware_available() noexcept;

} // namespace cairn::detail
