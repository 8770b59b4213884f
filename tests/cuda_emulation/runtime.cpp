// The CUDA emulation's runtime (test-only): runs the grids that csrc/cuda's host code launches, on the
// launching CPU thread, block after block, each block's threads as fibers on stacks of their own.
//
// Compiled without sanitizer instrumentation, so that only the kernels' own accesses are checked.
// Under ThreadSanitizer every emulated thread is a TSan fiber, switched to without synchronisation:
// two threads' accesses are ordered only by what orders them on a GPU — __syncthreads (a release by
// every thread, then an acquire by every thread), __syncwarp among its lanes, the kernel's start
// (after the host's writes) and the end of the grid (before the host reads). Blocks are never ordered
// with each other, so a race between blocks is a race here too. Under AddressSanitizer the fiber
// switches are announced, and every tensor has red zones (the torch allocations go through ASan's
// malloc). Each misuse that the scheduler itself can see stops the launch with a C++ exception (a
// RuntimeError in Python) naming the kernel, the block and the thread.
#include <cuda_runtime.h>
#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <torch/csrc/stable/c/shim.h>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#define EMU_EXPORT extern "C" __attribute__((visibility("default")))

extern "C" {
// The sanitizers' fiber interfaces, bound when the process runs under one (weak: absent otherwise).
void* __tsan_get_current_fiber() __attribute__((weak));
void* __tsan_create_fiber(unsigned flags) __attribute__((weak));
void __tsan_destroy_fiber(void* fiber) __attribute__((weak));
void __tsan_switch_to_fiber(void* fiber, unsigned flags) __attribute__((weak));
void __tsan_set_fiber_name(void* fiber, const char* name) __attribute__((weak));
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
// (TSan's own way to make memory new again for the detector; its AnnotateNewMemory does nothing.)
void __tsan_java_alloc(unsigned long ptr, unsigned long size) __attribute__((weak));
void __tsan_java_free(unsigned long ptr, unsigned long size) __attribute__((weak));
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size) __attribute__((weak));
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, size_t* size_old)
    __attribute__((weak));
void __asan_unpoison_memory_region(const volatile void* addr, size_t size) __attribute__((weak));

FastlossEmuBuiltins fastloss_emu_builtins = {};

// Context switch (x86-64 System V): saves the callee-saved registers, MXCSR and the x87 control word
// on the current stack, stores its pointer in *save, and resumes the stack `load`.
void fastloss_emu_switch(void** save, void* load) __attribute__((visibility("hidden")));
void fastloss_emu_trampoline() __attribute__((visibility("hidden")));
}

asm(R"(
  .text
  .globl fastloss_emu_switch
  .hidden fastloss_emu_switch
  .type fastloss_emu_switch, @function
fastloss_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size fastloss_emu_switch, .-fastloss_emu_switch

  .globl fastloss_emu_trampoline
  .hidden fastloss_emu_trampoline
  .type fastloss_emu_trampoline, @function
fastloss_emu_trampoline:
  movq %r12, %rdi
  andq $-16, %rsp
  callq *%r13
  ud2
  .size fastloss_emu_trampoline, .-fastloss_emu_trampoline
)");

namespace {

constexpr int kWarp = FASTLOSS_EMU_WARP_SIZE;
constexpr unsigned long long kWarpLanes = kWarp == 64 ? ~0ull : 0xffffffffull;
constexpr size_t kStackSize = size_t(256) << 10;
constexpr size_t kStackPoison = size_t(32) << 10;  // poisoned below a fiber's stack pointer before each block
constexpr size_t kPage = 4096;
constexpr unsigned kTsanNoSync = 1;  // __tsan_switch_to_fiber_no_sync
// CUDA's limits (compute capability 7.5 to 12.0).
constexpr unsigned kMaxBlockThreads = 1024, kMaxBlockZ = 64, kMaxGridYZ = 65535;
constexpr unsigned long long kMaxGridX = 0x7fffffffull;
constexpr size_t kMaxStaticShared = 48 << 10;

enum class State { kReady, kBarrier, kWarp, kExited, kAssert };

const char* op_name(int op) {
  switch (op) {
    case kEmuShflIdx: return "__shfl_sync";
    case kEmuShflUp: return "__shfl_up_sync";
    case kEmuShflDown: return "__shfl_down_sync";
    case kEmuShflXor: return "__shfl_xor_sync";
    case kEmuBallot: return "__ballot_sync";
    case kEmuSyncWarp: return "__syncwarp";
    case kEmuAny: return "__any_sync";
    case kEmuAll: return "__all_sync";
    default: return "a warp operation";
  }
}

// A fiber: a stack of its own (a guard page below it) and, under TSan, a thread of its own. Fibers
// outlive blocks: between two blocks a fiber waits at the end of its loop (fiber_main).
struct Context {
  void* sp = nullptr;
  char* stack = nullptr;
  void* tsan = nullptr;
  void* asan_fake_stack = nullptr;
};

// An emulated thread of the running block, on a fiber.
struct Fiber {
  Context* ctx = nullptr;
  unsigned tid = 0, lane = 0, warp = 0;
  uint3 idx{};
  State state = State::kReady;
  const char* file = nullptr;  // where it waits (or its failed assert is)
  int line = 0;
  const char* condition = nullptr;  // of a failed device-side assert
  // the pending warp operation
  int op = 0, arg = 0, width = 0;
  unsigned long long mask = 0;
  size_t size = 0;
  unsigned char in[16] = {}, out[16] = {};
};

struct Emulator {
  std::mutex launch_mutex;
  // configuration
  uint64_t seed = 0;
  void* current_stream = reinterpret_cast<void*>(0x5eed);  // torch's current stream, as this emulation has it
  // The emulated GPUs, by SM count, and the current one. Another SM count is another device, as the
  // library asks a device's SM count and occupancies once.
  std::vector<int> multiprocessors{2};  // (small grids: the emulation is slow; waves come quickly)
  int device = 0;
  bool valid_device(int d) const { return d >= 0 && d < static_cast<int>(multiprocessors.size()); }
  // the running launch
  const char* kernel_name = nullptr;
  dim3 grid, block;
  void (*run)(const void*) = nullptr;
  const void* closure = nullptr;
  std::vector<Fiber> fibers;
  // Two sets of fibers, for even and odd blocks: consecutive blocks never share a TSan thread (its
  // program order would hide a race between them).
  std::vector<Context*> contexts;
  uint64_t blocks_run = 0;
  Fiber* current = nullptr;
  void* scheduler_sp = nullptr;
  void* scheduler_tsan = nullptr;
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
  char* block_sync = nullptr;  // TSan sync addresses of this block: [0] __syncthreads, [1 + w] warp w
  char* grid_done = nullptr;   // every thread releases here at its exit; the host acquires after the grid
  std::string error;
  std::mt19937_64 rng;
  // coverage and names
  std::map<const void*, std::string> names;
  struct Shared {
    char* at;
    size_t size;
    std::string function;  // the function it is local to ("" at namespace scope)
  };
  std::vector<Shared> shared;                  // every __shared__ variable instance of the library
  std::map<const void*, size_t> shared_bytes;  // per kernel: its own, and every other function's
  std::map<const void*, uint64_t> launches;
  std::map<const void*, uint64_t> widest;  // the most blocks a launch of the kernel had
  bool names_read = false;
};

Emulator& emu() {
  static Emulator* e = new Emulator;  // (never destroyed: fibers may outlive static destruction)
  return *e;
}

// The word a block's shared memory and its threads' fresh stack space are filled with: NaN bytes
// for even seeds, a signalling NaN for odd ones.
uint32_t poison_word() { return emu().seed % 2 == 0 ? 0xffffffffu : 0x7fa00000u; }

bool tsan() { return __tsan_switch_to_fiber != nullptr; }
bool asan() { return __sanitizer_start_switch_fiber != nullptr; }

// A byte copy that the sanitizers' memcpy interceptor does not see (it would count the scheduler's
// copies of the lanes' operands as the emulated threads' own accesses).
void copy_bytes(void* dst, const void* src, size_t n) {
  auto* d = static_cast<volatile unsigned char*>(dst);
  const auto* s = static_cast<const volatile unsigned char*>(src);
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
}

// ------------------------------------------------------------------------------- kernel names

std::string demangle(const char* name) {
  int status = 0;
  char* s = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && s ? s : name;
  std::free(s);
  return out;
}

// The names of csrc/cuda's __global__ templates and __shared__ variables (build.py writes
// emulated_names.inc from the sources).
#include "emulated_names.inc"
const char* const kKernelTemplates[] = {FASTLOSS_EMU_KERNELS};
const char* const kSharedVariables[] = {FASTLOSS_EMU_SHARED};

bool is_shared_variable(const std::string& demangled) {
  if (demangled.rfind("fastloss::", 0) != 0) return false;
  const size_t colon = demangled.rfind("::");
  for (const char* v : kSharedVariables)
    if (demangled.compare(colon + 2, std::string::npos, v) == 0) return true;
  return false;
}

// "fastloss::...::name" of a demangled function, when `name` is a __global__ template (else empty).
std::string kernel_template(std::string demangled) {
  // (clones, and the lambdas of kernels that an unoptimised build keeps out of line, are not kernels)
  if (demangled.find("[clone") != std::string::npos || demangled.find("{lambda") != std::string::npos) return {};
  for (size_t at; (at = demangled.find("(anonymous namespace)")) != std::string::npos;)
    demangled.replace(at, 21, "{anonymous}");
  size_t begin = demangled.rfind("void ", 0) == 0 ? 5 : 0, end = begin;
  while (end < demangled.size() && demangled[end] != '<' && demangled[end] != '(') ++end;
  const std::string qualified = demangled.substr(begin, end - begin);
  if (qualified.rfind("fastloss::", 0) != 0) return {};
  const size_t colon = qualified.rfind("::");
  const std::string base = qualified.substr(colon + 2);
  for (const char* k : kKernelTemplates)
    if (base == k) return qualified;
  return {};
}

// Every __global__ template instance and every __shared__ variable of the library holding `any`, from
// its ELF symbol table (local symbols included, which dladdr cannot see). (A __shared__ variable is a
// function-local static here: one copy, as blocks run one at a time.)
void read_kernel_names(const void* any) {
  Emulator& e = emu();
  if (e.names_read) return;
  e.names_read = true;
  Dl_info info{};
  if (dladdr(any, &info) == 0 || info.dli_fname == nullptr) return;
  const int fd = open(info.dli_fname, O_RDONLY);
  if (fd < 0) return;
  struct stat st{};
  fstat(fd, &st);
  void* map = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return;
  const auto* base = static_cast<const char*>(map);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_SYMTAB) continue;
    const auto* syms = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
    const char* strings = base + sh[sh[i].sh_link].sh_offset;
    for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); ++k) {
      const int type = ELF64_ST_TYPE(syms[k].st_info);
      if ((type != STT_FUNC && type != STT_OBJECT) || syms[k].st_shndx == SHN_UNDEF) continue;
      const char* mangled = strings + syms[k].st_name;
      if (std::strstr(mangled, "fastloss") == nullptr) continue;
      const std::string name = demangle(mangled);
      char* at = static_cast<char*>(info.dli_fbase) + syms[k].st_value;
      if (type == STT_FUNC && !kernel_template(name).empty()) e.names[at] = name;
      if (type == STT_OBJECT && is_shared_variable(name)) {
        const size_t scope = name.rfind(")::");  // (a function-local static: "function(arguments)::name")
        e.shared.push_back({at, syms[k].st_size, scope == std::string::npos ? "" : name.substr(0, scope + 1)});
      }
    }
  }
  munmap(map, st.st_size);
}

// The static shared memory a kernel may use: its own __shared__ variables and those of every function
// that is not a kernel (device functions it may call, namespace scope): an upper bound. Other
// kernels' own variables are theirs alone.
size_t kernel_shared_bytes(const void* kernel) {
  Emulator& e = emu();
  auto cached = e.shared_bytes.find(kernel);
  if (cached != e.shared_bytes.end()) return cached->second;
  const auto signature = [](const std::string& name) {  // (a kernel's name starts with its return type)
    return name.rfind("void ", 0) == 0 ? name.substr(5) : name;
  };
  std::set<std::string> kernels;
  for (const auto& [at, name] : e.names) kernels.insert(signature(name));
  const auto own = e.names.find(kernel);
  const std::string mine = own != e.names.end() ? signature(own->second) : "";
  size_t bytes = 0;
  for (const Emulator::Shared& v : e.shared)
    if (kernels.count(v.function) == 0 || v.function == mine) bytes += v.size;
  return e.shared_bytes[kernel] = bytes;
}

const char* kernel_name(const void* kernel) {
  read_kernel_names(kernel);
  auto it = emu().names.find(kernel);
  return it != emu().names.end() ? it->second.c_str() : "(a kernel not among csrc/cuda's __global__ templates)";
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// ------------------------------------------------------------------------------------ errors

// "kernel <name>, block (x, y, z)" of the running block.
std::string where() {
  const uint3& b = fastloss_emu_builtins.block_idx;
  return std::string("kernel ") + emu().kernel_name + ", block (" + std::to_string(b.x) + ", " + std::to_string(b.y) +
         ", " + std::to_string(b.z) + ")";
}

std::string thread_of(const Fiber& f) {
  std::ostringstream s;
  s << "thread " << f.tid << " (warp " << f.warp << ", lane " << f.lane << ")";
  return s.str();
}

std::string site(const Fiber& f) { return std::string(f.file ? f.file : "?") + ":" + std::to_string(f.line); }

// Records the first error of the launch; the scheduler then stops it.
void fail(const std::string& message) {
  Emulator& e = emu();
  if (e.error.empty()) e.error = message;
}

// ------------------------------------------------------------------------------------ fibers

void yield_to_scheduler(bool final);

// A fiber's life: for each block it is given, run the kernel's thread, then wait for the next.
extern "C" void fiber_main(Context* c) {
  Emulator& e = emu();
  if (asan()) __sanitizer_finish_switch_fiber(nullptr, &e.scheduler_stack_bottom, &e.scheduler_stack_size);
  (void)c;
  for (;;) {
    if (tsan()) __tsan_acquire(e.block_sync);
    e.run(e.closure);
    if (tsan()) __tsan_release(e.grid_done);
    e.current->state = State::kExited;
    yield_to_scheduler(false);
  }
}

void yield_to_scheduler(bool final) {
  Emulator& e = emu();
  Context* c = e.current->ctx;
  if (asan())
    __sanitizer_start_switch_fiber(final ? nullptr : &c->asan_fake_stack, e.scheduler_stack_bottom,
                                   e.scheduler_stack_size);
  if (tsan()) __tsan_switch_to_fiber(e.scheduler_tsan, kTsanNoSync);
  fastloss_emu_switch(&c->sp, e.scheduler_sp);
  if (asan()) __sanitizer_finish_switch_fiber(c->asan_fake_stack, nullptr, nullptr);
}

void resume(Fiber& f) {
  Emulator& e = emu();
  e.current = &f;
  fastloss_emu_builtins.thread_idx = f.idx;
  if (asan()) __sanitizer_start_switch_fiber(&e.scheduler_fake_stack, f.ctx->stack, kStackSize);
  if (tsan()) __tsan_switch_to_fiber(f.ctx->tsan, kTsanNoSync);
  fastloss_emu_switch(&e.scheduler_sp, f.ctx->sp);
  if (asan()) __sanitizer_finish_switch_fiber(e.scheduler_fake_stack, nullptr, nullptr);
  e.current = nullptr;
}

Context* new_context() {
  auto* c = new Context;
  void* p = mmap(nullptr, kStackSize + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("CUDA emulation: cannot map a fiber stack");
  mprotect(p, kPage, PROT_NONE);  // a stack overflow faults here
  c->stack = static_cast<char*>(p) + kPage;
  if (tsan()) c->tsan = __tsan_create_fiber(0);
  unsigned int mxcsr = 0;
  unsigned short fcw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fcw));
  auto* sp = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(c->stack + kStackSize) & ~uintptr_t(15));
  *--sp = 0;                                                     // the trampoline's return address
  *--sp = reinterpret_cast<uint64_t>(&fastloss_emu_trampoline);  // where the first switch returns
  *--sp = 0;                                                     // rbp
  *--sp = 0;                                                     // rbx
  *--sp = reinterpret_cast<uint64_t>(c);                         // r12: fiber_main's argument
  *--sp = reinterpret_cast<uint64_t>(&fiber_main);               // r13: the function the trampoline calls
  *--sp = 0;                                                     // r14
  *--sp = 0;                                                     // r15
  *--sp = uint64_t(mxcsr) | uint64_t(fcw) << 32;                 // MXCSR, x87 control word
  c->sp = sp;
  return c;
}

// A fiber that stopped inside a kernel (the launch failed) cannot be resumed: it is dropped. Its
// accesses so far still happen before the host's next ones (as a failed grid's on a GPU): it releases
// into the grid's end on its own behalf first.
void drop_context(Context*& c) {
  if (tsan()) {
    __tsan_switch_to_fiber(c->tsan, kTsanNoSync);
    __tsan_release(emu().grid_done);
    __tsan_switch_to_fiber(emu().scheduler_tsan, kTsanNoSync);
    __tsan_destroy_fiber(c->tsan);
  }
  munmap(c->stack - kPage, kStackSize + kPage);
  delete c;
  c = nullptr;
}

void start_thread(Fiber& f, unsigned tid, const dim3& block, size_t set) {
  Emulator& e = emu();
  f = Fiber{};
  const size_t slot = set * kMaxBlockThreads + tid;
  if (e.contexts.size() <= slot) e.contexts.resize(slot + 1, nullptr);
  if (e.contexts[slot] == nullptr) e.contexts[slot] = new_context();
  f.ctx = e.contexts[slot];
  // the stack below the fiber's pointer, where the kernel's frames go: a local read before its write
  // then reads the poison (uninstrumented stores: no sanitizer counts them as the thread's)
  auto* below = reinterpret_cast<volatile uint32_t*>(static_cast<char*>(f.ctx->sp) - kStackPoison);
  const uint32_t word = poison_word();
  for (size_t i = 0; i < kStackPoison / 4; ++i) below[i] = word;
  f.tid = tid;
  f.lane = tid % kWarp;
  f.warp = tid / kWarp;
  f.idx = uint3{tid % block.x, tid / block.x % block.y, tid / (block.x * block.y)};
  if (tsan()) {
    const uint3& b = fastloss_emu_builtins.block_idx;
    const std::string name = "block (" + std::to_string(b.x) + ", " + std::to_string(b.y) + ", " + std::to_string(b.z) +
                             ") " + thread_of(f) + " of " + e.kernel_name;
    __tsan_set_fiber_name(f.ctx->tsan, name.c_str());
  }
}

// ------------------------------------------------------------------------- warp operations

// The lane a shuffle reads for `lane`, as PTX's shfl.sync defines it (width: the segment size).
unsigned shuffle_source(int op, unsigned lane, int arg, int width) {
  const unsigned seg = unsigned(kWarp - width), b = unsigned(arg) & (kWarp - 1);
  const unsigned clamp = op == kEmuShflUp ? 0u : unsigned(kWarp - 1);
  const unsigned max_lane = (lane & seg) | (clamp & ~seg), min_lane = lane & seg;
  long j = lane;
  bool in_range = true;
  switch (op) {
    case kEmuShflUp: j = long(lane) - long(b), in_range = j >= long(max_lane); break;
    case kEmuShflDown: j = lane + b, in_range = j <= long(max_lane); break;
    case kEmuShflXor: j = lane ^ b, in_range = j <= long(max_lane); break;
    default: j = min_lane | (b & ~seg), in_range = j <= long(max_lane); break;
  }
  return in_range ? unsigned(j) : lane;
}

bool same_op(const Fiber& a, const Fiber& b) {
  return a.state == State::kWarp && b.state == State::kWarp && a.op == b.op && a.mask == b.mask && a.width == b.width;
}

std::string mask_text(unsigned long long mask) {
  std::ostringstream s;
  s << "0x" << std::hex << mask;
  return s.str();
}

// A lane arrived at a warp operation: check its mask, and complete the operation once every lane it
// names has arrived at the same one.
void warp_arrived(Fiber& f, std::vector<Fiber*>& ready) {
  Emulator& e = emu();
  const unsigned threads = static_cast<unsigned>(e.fibers.size());
  const unsigned base = f.warp * kWarp, present = std::min<unsigned>(kWarp, threads - base);
  const std::string at = std::string(op_name(f.op)) + " at " + site(f) + " with mask " + mask_text(f.mask);
  if (f.mask & ~kWarpLanes)
    return fail(where() + ", " + thread_of(f) + ": " + at + " names lanes beyond the warp's " + std::to_string(kWarp));
  if (!(f.mask >> f.lane & 1)) return fail(where() + ", " + thread_of(f) + ": " + at + " leaves out the calling lane");
  if (f.op <= kEmuShflXor && (f.width < 1 || f.width > kWarp || (f.width & (f.width - 1)) != 0))
    return fail(where() + ", " + thread_of(f) + ": " + at + " has width " + std::to_string(f.width) +
                ", not a power of two up to " + std::to_string(kWarp));
  bool complete = true;
  for (unsigned l = 0; l < kWarp; ++l) {
    if (!(f.mask >> l & 1)) continue;
    if (l >= present)
      return fail(where() + ", " + thread_of(f) + ": " + at + " names lane " + std::to_string(l) +
                  ", absent from this warp (the block has " + std::to_string(threads) + " threads)");
    const Fiber& o = e.fibers[base + l];
    if (o.state == State::kExited)
      return fail(where() + ", " + thread_of(f) + ": " + at + " names lane " + std::to_string(l) +
                  ", which has exited the kernel");
    if (o.state == State::kWarp && !same_op(o, f) && (o.mask >> f.lane & 1))
      return fail(where() + ": lanes " + std::to_string(f.lane) + " and " + std::to_string(l) + " of warp " +
                  std::to_string(f.warp) + " wait for each other at different warp operations: " + at + ", and " +
                  op_name(o.op) + " at " + site(o) + " with mask " + mask_text(o.mask));
    complete = complete && same_op(o, f);
  }
  if (!complete) return;
  unsigned long long votes = 0;
  for (unsigned l = 0; l < kWarp; ++l)
    if (f.mask >> l & 1) {
      unsigned long long v = 0;
      copy_bytes(&v, e.fibers[base + l].in, sizeof(v));
      votes |= (v != 0 ? 1ull : 0ull) << l;
    }
  for (unsigned l = 0; l < kWarp; ++l) {
    if (!(f.mask >> l & 1)) continue;
    Fiber& o = e.fibers[base + l];
    if (f.op <= kEmuShflXor) {
      const unsigned src = shuffle_source(f.op, l, o.arg, f.width);
      if (!(f.mask >> src & 1))
        return fail(where() + ", " + thread_of(o) + ": " + at + " reads lane " + std::to_string(src) +
                    ", which the mask leaves out (an undefined value)");
      copy_bytes(o.out, e.fibers[base + src].in, o.size);
    } else if (f.op != kEmuSyncWarp) {
      const unsigned long long result = f.op == kEmuBallot ? votes : f.op == kEmuAny ? votes != 0 : votes == f.mask;
      copy_bytes(o.out, &result, sizeof(result));
    }
  }
  for (unsigned l = 0; l < kWarp; ++l)
    if (f.mask >> l & 1) {
      e.fibers[base + l].state = State::kReady;
      ready.push_back(&e.fibers[base + l]);
    }
}

// A thread exited: no lane may still wait for it at a warp operation.
void thread_exited(const Fiber& f) {
  Emulator& e = emu();
  const unsigned base = f.warp * kWarp;
  for (unsigned l = 0; l < kWarp && base + l < e.fibers.size(); ++l) {
    const Fiber& o = e.fibers[base + l];
    if (o.state == State::kWarp && (o.mask >> f.lane & 1))
      return fail(where() + ", " + thread_of(o) + ": " + op_name(o.op) + " at " + site(o) + " with mask " +
                  mask_text(o.mask) + " names lane " + std::to_string(f.lane) + ", which has exited the kernel");
  }
}

// Every thread at a barrier or exited: release the barrier, or report who did not come.
void check_barrier(std::vector<Fiber*>& ready) {
  Emulator& e = emu();
  size_t waiting = 0, exited = 0;
  const Fiber* first = nullptr;
  const Fiber* gone = nullptr;
  for (const Fiber& f : e.fibers) {
    if (f.state == State::kBarrier) {
      ++waiting;
      if (first == nullptr) first = &f;
    } else if (f.state == State::kExited) {
      ++exited;
      if (gone == nullptr) gone = &f;
    }
  }
  if (waiting == 0 || waiting + exited < e.fibers.size()) return;
  if (exited > 0)
    return fail(where() + ": __syncthreads at " + site(*first) + " is not reached by every thread of the block: " +
                thread_of(*gone) + " (and " + std::to_string(exited - 1) + " more) exited the kernel while " +
                std::to_string(waiting) + " wait there");
  for (const Fiber& f : e.fibers)
    if (f.file != first->file || f.line != first->line)
      return fail(where() + ": the threads of the block wait at different barriers: " + thread_of(*first) + " at " +
                  site(*first) + ", " + thread_of(f) + " at " + site(f));
  for (Fiber& f : e.fibers) {
    f.state = State::kReady;
    ready.push_back(&f);
  }
}

std::string describe_deadlock() {
  const Emulator& e = emu();
  std::ostringstream s;
  s << where() << ": deadlock: no thread can go on;";
  int shown = 0;
  for (const Fiber& f : e.fibers) {
    if (f.state == State::kExited || shown == 6) continue;
    ++shown;
    s << " " << thread_of(f) << " waits at "
      << (f.state == State::kBarrier ? std::string("__syncthreads")
                                     : std::string(op_name(f.op)) + " (mask " + mask_text(f.mask) + ")")
      << " at " << site(f) << ";";
  }
  return s.str();
}

// Poisons the block's shared memory (a read before any write then changes the result; the tests run
// each case under two poisons) and makes it new memory for the race detector: each block has its own.
void reset_shared_memory() {
  const uint32_t word = poison_word();
  for (const auto& v : emu().shared) {
    for (size_t i = 0; i < v.size; ++i) v.at[i] = static_cast<char>(word >> (8 * (i % 4)));
    if (tsan()) {
      __tsan_java_free(reinterpret_cast<unsigned long>(v.at), v.size);
      __tsan_java_alloc(reinterpret_cast<unsigned long>(v.at), v.size);
    }
  }
}

void run_block(const dim3& block_idx) {
  Emulator& e = emu();
  const unsigned threads = e.block.x * e.block.y * e.block.z;
  fastloss_emu_builtins.block_idx = uint3{block_idx.x, block_idx.y, block_idx.z};
  reset_shared_memory();
  e.block_sync = static_cast<char*>(std::calloc(1 + threads / kWarp + 1, 8));
  if (tsan()) __tsan_release(e.block_sync);  // what the host did before the block happens before it
  e.fibers.assign(threads, Fiber{});
  const size_t set = e.blocks_run++ % 2;
  for (unsigned t = 0; t < threads; ++t) start_thread(e.fibers[t], t, e.block, set);
  std::vector<Fiber*> ready;
  for (Fiber& f : e.fibers) ready.push_back(&f);
  size_t exited = 0;
  while (e.error.empty() && exited < threads) {
    if (ready.empty()) {
      fail(describe_deadlock());
      break;
    }
    // seed 0: in thread order; any other seed: a random ready thread each time
    size_t pick = 0;
    if (e.seed != 0) pick = std::uniform_int_distribution<size_t>(0, ready.size() - 1)(e.rng);
    Fiber* f = ready[pick];
    ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(pick));
    resume(*f);
    switch (f->state) {
      case State::kExited:
        ++exited;
        thread_exited(*f);
        check_barrier(ready);
        break;
      case State::kBarrier: check_barrier(ready); break;
      case State::kWarp: warp_arrived(*f, ready); break;
      case State::kReady: fail(where() + ", " + thread_of(*f) + ": yielded without waiting"); break;
      case State::kAssert:
        fail(where() + ", " + thread_of(*f) + ": device-side assert triggered: `" + f->condition + "` at " + site(*f));
        break;
    }
  }
  for (Fiber& f : e.fibers)
    if (f.state != State::kExited) drop_context(e.contexts[set * kMaxBlockThreads + f.tid]);
  std::free(e.block_sync);
  e.block_sync = nullptr;
}

Fiber& running_fiber(const char* what) {
  Fiber* f = emu().current;
  if (f == nullptr) {
    fprintf(stderr, "CUDA emulation: %s called outside a kernel\n", what);
    std::abort();
  }
  return *f;
}

}  // namespace

// ------------------------------------------------------------------ the device side (fibers)

EMU_EXPORT void fastloss_emu_syncthreads(const char* file, int line) {
  Fiber& f = running_fiber("__syncthreads");
  Emulator& e = emu();
  if (tsan()) __tsan_release(e.block_sync);
  f.state = State::kBarrier;
  f.file = file;
  f.line = line;
  yield_to_scheduler(false);
  if (tsan()) __tsan_acquire(e.block_sync);
}

EMU_EXPORT void fastloss_emu_warp_op(int op, unsigned long long mask, int arg, int width, void* value, size_t size,
                                     const char* file, int line) {
  Fiber& f = running_fiber(op_name(op));
  Emulator& e = emu();
  f.op = op;
  f.mask = mask;
  f.arg = arg;
  f.width = width;
  f.size = size;
  f.file = file;
  f.line = line;
  copy_bytes(f.in, value, size);
  void* sync = e.block_sync + 8 * (1 + f.warp);
  if (op == kEmuSyncWarp && tsan()) __tsan_release(sync);
  f.state = State::kWarp;
  yield_to_scheduler(false);
  if (op == kEmuSyncWarp && tsan()) __tsan_acquire(sync);
  copy_bytes(value, f.out, size);
}

EMU_EXPORT unsigned long long fastloss_emu_activemask() {
  const Fiber& f = running_fiber("__activemask");
  const Emulator& e = emu();
  unsigned long long lanes = 0;
  const unsigned base = f.warp * kWarp;
  for (unsigned l = 0; l < kWarp && base + l < e.fibers.size(); ++l)
    if (e.fibers[base + l].state != State::kExited) lanes |= 1ull << l;
  return lanes;
}

// (The message is the scheduler's to write: a string built here would be this thread's memory access.)
EMU_EXPORT void fastloss_emu_device_assert(const char* condition, const char* file, int line) {
  Fiber& f = running_fiber("a device-side assert");
  f.condition = condition;
  f.file = file;
  f.line = line;
  f.state = State::kAssert;  // stopped inside the kernel: dropped, never resumed
  yield_to_scheduler(true);
  __builtin_trap();
}

// ------------------------------------------------------------------- the host side (launches)

EMU_EXPORT void fastloss_emu_launch(const void* kernel, dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
                                    void (*run)(const void*), const void* closure) {
  Emulator& e = emu();
  if (e.current != nullptr) throw std::runtime_error("CUDA emulation: a kernel launched a kernel");
  const std::lock_guard<std::mutex> lock(e.launch_mutex);
  const char* name = kernel_name(kernel);
  ++e.launches[kernel];
  uint64_t& widest = e.widest[kernel];
  widest = std::max<uint64_t>(widest, 1ull * grid.x * grid.y * grid.z);
  const std::string launch = std::string("CUDA emulation: kernel ") + name + ": ";
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > kMaxBlockThreads || block.z > kMaxBlockZ)
    throw std::runtime_error(launch + "a block of (" + std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
                             std::to_string(block.z) + ") threads is outside CUDA's limits (1 to 1024 threads)");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > kMaxGridX || grid.y > kMaxGridYZ || grid.z > kMaxGridYZ)
    throw std::runtime_error(launch + "a grid of (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
                             std::to_string(grid.z) + ") blocks is outside CUDA's limits (x < 2^31, y and z <= 65535)");
  const size_t static_shared = kernel_shared_bytes(kernel);
  if (static_shared + shared > kMaxStaticShared)
    throw std::runtime_error(launch + std::to_string(static_shared + shared) +
                             " bytes of shared memory exceed the 48 KiB a kernel gets without opting in");
  if (stream != e.current_stream)
    throw std::runtime_error(launch + "launched on stream " + mask_text(reinterpret_cast<uintptr_t>(stream)) +
                             ", not on torch's current stream " +
                             mask_text(reinterpret_cast<uintptr_t>(e.current_stream)));
  e.kernel_name = name;
  e.grid = grid;
  e.block = block;
  e.run = run;
  e.closure = closure;
  e.error.clear();
  e.rng.seed(e.seed * 0x9e3779b97f4a7c15ull + e.launches[kernel]);
  fastloss_emu_builtins.block_dim = block;
  fastloss_emu_builtins.grid_dim = grid;
  std::vector<dim3> order;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) order.emplace_back(x, y, z);
  if (e.seed != 0) std::shuffle(order.begin(), order.end(), e.rng);  // blocks run in any order on a GPU
  if (tsan()) e.scheduler_tsan = __tsan_get_current_fiber();
  e.grid_done = static_cast<char*>(std::calloc(1, 8));
  for (const dim3& b : order) {
    run_block(b);
    if (!e.error.empty()) break;
  }
  if (tsan()) __tsan_acquire(e.grid_done);
  std::free(e.grid_done);
  e.grid_done = nullptr;
  e.fibers.clear();
  if (!e.error.empty()) {
    const std::string message = "CUDA emulation: " + e.error;
    e.error.clear();
    throw std::runtime_error(message);
  }
}

// ------------------------------------------------------------------------- the runtime API

namespace {
cudaError_t last_error = cudaSuccess;

[[noreturn]] void host_sync(const char* what) {
  throw std::runtime_error(std::string("CUDA emulation: ") + what +
                           " inside an op: a host synchronisation (it would stall the stream and break CUDA graphs)");
}

void check_stream(cudaStream_t stream, const char* what) {
  if (stream != emu().current_stream)
    throw std::runtime_error(std::string("CUDA emulation: ") + what + " on stream " +
                             mask_text(reinterpret_cast<uintptr_t>(stream)) + ", not on torch's current stream");
}
}  // namespace

EMU_EXPORT const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    default: return "unknown error";
  }
}
EMU_EXPORT cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
EMU_EXPORT cudaError_t cudaPeekAtLastError() { return last_error; }
EMU_EXPORT cudaError_t cudaGetDevice(int* device) {
  *device = emu().device;
  return cudaSuccess;
}
EMU_EXPORT cudaError_t cudaSetDevice(int device) {
  if (!emu().valid_device(device)) return cudaErrorInvalidDevice;
  emu().device = device;
  return cudaSuccess;
}
EMU_EXPORT cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!emu().valid_device(device)) return cudaErrorInvalidDevice;
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = emu().multiprocessors[device]; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxGridDimY: *value = 65535; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
// Each kernel instance gets its own occupancy (1 to 8 blocks per SM, from its name: the same in every
// process), as instances of one template differ in registers on a GPU.
EMU_EXPORT cudaError_t fastloss_emu_occupancy(int* blocks, const void* kernel, int block_size, size_t) {
  if (block_size < 1 || block_size > 1024) return cudaErrorInvalidValue;
  *blocks = 1 + static_cast<int>(fnv1a(kernel_name(kernel)) % 8);
  return cudaSuccess;
}
EMU_EXPORT cudaError_t cudaMemsetAsync(void* dst, int value, size_t count, cudaStream_t stream) {
  check_stream(stream, "cudaMemsetAsync");
  std::memset(dst, value, count);
  return cudaSuccess;
}
EMU_EXPORT cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                                       cudaStream_t stream) {
  if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDefault) host_sync("a device-to-host cudaMemcpyAsync");
  check_stream(stream, "cudaMemcpyAsync");
  std::memmove(dst, src, count);
  return cudaSuccess;
}
EMU_EXPORT cudaError_t cudaMemcpy(void*, const void*, size_t, cudaMemcpyKind) { host_sync("cudaMemcpy"); }
EMU_EXPORT cudaError_t cudaStreamSynchronize(cudaStream_t) { host_sync("cudaStreamSynchronize"); }
EMU_EXPORT cudaError_t cudaDeviceSynchronize() { host_sync("cudaDeviceSynchronize"); }

// torch's side of the launch (the stable C shim's CUDA entries), as this emulation has it: the
// tensors are the CPU's (index -1), the kernels run on the current emulated device.
EMU_EXPORT AOTITorchError aoti_torch_get_current_cuda_stream(int32_t device_index, void** ret_stream) {
  if (device_index != emu().device) return AOTI_TORCH_FAILURE;
  *ret_stream = emu().current_stream;
  return AOTI_TORCH_SUCCESS;
}
EMU_EXPORT AOTITorchError aoti_torch_create_device_guard(int32_t device_index, DeviceGuardHandle* ret_guard) {
  if (device_index != -1 && device_index != emu().device) return AOTI_TORCH_FAILURE;
  static char guard;
  *ret_guard = reinterpret_cast<DeviceGuardHandle>(&guard);
  return AOTI_TORCH_SUCCESS;
}
EMU_EXPORT AOTITorchError aoti_torch_delete_device_guard(DeviceGuardHandle) { return AOTI_TORCH_SUCCESS; }
EMU_EXPORT AOTITorchError aoti_torch_device_guard_set_index(DeviceGuardHandle, int32_t device_index) {
  return device_index == -1 || device_index == emu().device ? AOTI_TORCH_SUCCESS : AOTI_TORCH_FAILURE;
}

// ----------------------------------------------------------------- configuration and report

// The schedule (0: threads and blocks in order; any other seed: a random order of blocks, and a random
// ready thread at each switch), which also picks the shared-memory poison (even: NaN bytes; odd: a
// signalling NaN pattern).
EMU_EXPORT void fastloss_emu_set_seed(uint64_t seed) { emu().seed = seed; }
EMU_EXPORT void fastloss_emu_set_current_stream(uintptr_t stream) {
  emu().current_stream = reinterpret_cast<void*>(stream);
}
EMU_EXPORT uintptr_t fastloss_emu_current_stream() { return reinterpret_cast<uintptr_t>(emu().current_stream); }
// Makes the current device one with n SMs (a device of its own per SM count).
EMU_EXPORT void fastloss_emu_set_multiprocessors(int n) {
  auto& sms = emu().multiprocessors;
  n = std::max(n, 1);
  emu().device = static_cast<int>(std::find(sms.begin(), sms.end(), n) - sms.begin());
  if (emu().device == static_cast<int>(sms.size())) sms.push_back(n);
}
EMU_EXPORT int fastloss_emu_warp_size() { return kWarp; }

// Every __global__ template instance of the library, how often it was launched and its widest grid:
// "count<TAB>blocks<TAB>name" lines.
EMU_EXPORT const char* fastloss_emu_report() {
  static std::string report;
  Emulator& e = emu();
  read_kernel_names(reinterpret_cast<const void*>(&fastloss_emu_report));
  std::ostringstream s;
  for (const auto& [at, name] : e.names) {
    auto it = e.launches.find(at);
    auto wide = e.widest.find(at);
    s << (it == e.launches.end() ? 0 : it->second) << '\t' << (wide == e.widest.end() ? 0 : wide->second) << '\t'
      << name << '\n';
  }
  report = s.str();
  return report.c_str();
}
