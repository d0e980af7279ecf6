// Re-executes lowbit with OMP_WAIT_POLICY=passive unless the user chose how OpenMP threads wait.
//
// GNU libgomp's default (no OMP_WAIT_POLICY) lets a thread that waits for work spin for
// GOMP_SPINCOUNT = 300,000 `pause` instructions, ~13 ms on a Sapphire Rapids core, before it
// sleeps. lowbit's training opens one short parallel region per batch, so the spinning never
// stops, and when other processes want the cores the spinning thread takes turns away from the
// one that has the work: `lowbit train` ran 4-9x slower on 2 threads than on 1
// (docs/performance.md, "Busy machines"). Passive threads sleep at once and are run again as
// soon as they are woken.
//
// Why re-execute: libgomp parses its environment in its ELF constructor, which runs before
// main() and before any constructor of this program, and keeps no public way to change the
// wait policy later. An entry in the executable's .preinit_array does run before libgomp's
// constructor, but glibc's own initialisation then resets `environ` to the array the kernel
// passed, losing the setenv (tried). The exec costs about a millisecond.
#include "openmp_wait.h"

#include <unistd.h>

#include <cstdlib>
#include <initializer_list>

namespace lowbit::cli {

void wait_passively_unless_told(char** argv) {
  // GOMP_SPINCOUNT is libgomp's spin length, KMP_BLOCKTIME LLVM libomp's (built with clang).
  for (const char* chosen : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"})
    if (std::getenv(chosen) != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // no /proc: run as we are, with the runtime's default
}

}  // namespace lowbit::cli
