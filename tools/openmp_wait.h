// How lowbit's OpenMP threads wait for work by default: asleep, not spinning.
#pragma once

namespace lowbit::cli {

// Unless OMP_WAIT_POLICY, GOMP_SPINCOUNT or KMP_BLOCKTIME is set, sets OMP_WAIT_POLICY=passive
// and re-executes this program with the same arguments (it does not return then). GNU libgomp
// reads these variables once, when it is loaded, before main(), so setting them later has no
// effect.
// Returns, changing nothing, when the user chose a policy or the program cannot be re-executed.
// argv: main's, null-terminated.
void wait_passively_unless_told(char** argv);

}  // namespace lowbit::cli
