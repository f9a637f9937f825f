// Times the forward and the backward tree pass of every registered variant on one time step
// [B, N*H] (the program's base N), one thread. Variants take turns (round-robin, `rounds` times),
// each turn `steps` calls of each pass, each call timed alone; prints one JSON line per variant
// with the median microseconds per call (= per time step of the op) of each pass. The median
// over single calls ignores the calls during which a shared machine preempted the process.
//   harness B H ROUNDS STEPS PROGRAM...   (PROGRAM: the int64 row of pynas.ops.cell_program)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "harness.h"

namespace harness {
std::vector<Variant>& variants() {
  static std::vector<Variant> all;
  return all;
}
}  // namespace harness

namespace {

using pynas::cell::BackwardStep;
using pynas::cell::Blocking;
using pynas::cell::ForwardStep;

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::vector<float> v(n);
  uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = lo + (hi - lo) * static_cast<float>(s >> 8) / 16777216.0f;
  }
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s B H ROUNDS STEPS PROGRAM...\n", argv[0]);
    return 2;
  }
  const int64_t batch = std::atoll(argv[1]), hidden = std::atoll(argv[2]);
  const int rounds = std::atoi(argv[3]), steps = std::atoi(argv[4]);
  std::vector<int64_t> program;
  for (int i = 5; i < argc; ++i) program.push_back(std::atoll(argv[i]));
  const int64_t base = program[0];
  const int64_t width = base * hidden;
  const std::vector<int64_t> rows(batch, 0);
  std::vector<float> xp = uniform(batch * width, 1, -2.0f, 2.0f);
  std::vector<float> hp = uniform(batch * width, 2, -2.0f, 2.0f);
  std::vector<float> c_prev = uniform(batch * hidden, 3, -1.0f, 1.0f);
  std::vector<float> dh = uniform(batch * hidden, 4, -1.0f, 1.0f);
  std::vector<float> h(batch * hidden), c(batch * hidden), dc(batch * hidden);
  std::vector<float> dxp(batch * width), dhp(batch * width);

  ForwardStep<float> f{xp.data(), hp.data(), c_prev.data(), h.data(), c.data(),
                       program.data(), rows.data(), batch, hidden, base,
                       static_cast<int64_t>(program.size())};
  BackwardStep<float> b{xp.data(), hp.data(), c_prev.data(), dh.data(), nullptr, dc.data(),
                        dxp.data(), dhp.data(), program.data(), rows.data(), batch, hidden, base,
                        static_cast<int64_t>(program.size())};
  const Blocking blk = pynas::cell::make_blocking(hidden);
  const int64_t items = batch * blk.num_blocks;
  auto& all = harness::variants();
  std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  std::vector<std::vector<double>> fwd(all.size()), bwd(all.size());
  using clock = std::chrono::steady_clock;
  for (int r = -1; r < rounds; ++r) {  // round -1 warms up
    for (size_t v = 0; v < all.size(); ++v) {
      for (int s = 0; s < steps; ++s) {
        const auto t0 = clock::now();
        all[v].table.forward_f32(f, blk, 0, items);
        const auto t1 = clock::now();
        if (r >= 0) fwd[v].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
      for (int s = 0; s < steps; ++s) {
        std::fill(dc.begin(), dc.end(), 0.5f);  // the backward overwrites dc with d c_prev
        const auto t0 = clock::now();
        all[v].table.backward_f32(b, blk, 0, items);
        const auto t1 = clock::now();
        if (r >= 0) bwd[v].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    }
  }
  for (size_t v = 0; v < all.size(); ++v) {
    std::printf("{\"variant\": \"%s\", \"pass\": \"%s\", \"fwd_us\": %.2f, \"bwd_us\": %.2f}\n",
                all[v].name.c_str(), all[v].table.isa, median(fwd[v]), median(bwd[v]));
  }
  return 0;
}
