#pragma once
// Large outputs the CPU kernels write from scratch (the N × M box matrices) ask the kernel for
// transparent huge pages before their first touch. A fresh 400 MB tensor otherwise costs ~100k
// page faults, which took 119 ms to fill here against 25 ms on 2 MB pages (torch's own
// THP_MEM_ALLOC_ENABLE=1 does the same for every allocation). Only whole 2 MB pages inside the
// buffer are advised; where THP is off or unsupported, madvise fails and nothing changes.
#include <sys/mman.h>
#include <cstdint>

namespace fastloss::cpu {

inline void advise_huge_pages(void* data, int64_t bytes) {
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + static_cast<uintptr_t>(bytes)) & ~(kHuge - 1);
#ifdef MADV_HUGEPAGE
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)begin, (void)end;
#endif
}

}  // namespace fastloss::cpu
