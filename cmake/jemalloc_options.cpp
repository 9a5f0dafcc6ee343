// jemalloc's options for Cairn's programs (cmake/CairnMalloc.cmake), read by jemalloc
// at start-up; MALLOC_CONF in the environment still overrides them.
//
// Freed pages stay mapped for reuse instead of going back to the kernel: refaulting
// them made large reads (a whole-store replay, read_all of 65,536 events at a time)
// 3.4x slower on a VM. The cost: a process keeps the memory of its peak.
extern "C" {
const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
