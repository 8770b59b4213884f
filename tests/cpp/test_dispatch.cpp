// Loads the fastloss library as torch.ops.load_library does (dlopen: the ops register themselves)
// and calls fastloss::sigmoid_focal_loss and its backward through the dispatcher, checking values
// computed here from the formula (Lin et al. 2017) with <cmath>.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <dlfcn.h>
#include <cmath>
#include <cstdio>
#include <optional>
#include <tuple>

namespace {

int failures = 0;

void expect_near(const char* what, double got, double want, double tol = 1e-12) {
  const bool ok = std::abs(got - want) <= tol * (1 + std::abs(want));
  std::printf("%s %s: got %.15g, want %.15g\n", ok ? "ok  " : "FAIL", what, got, want);
  failures += !ok;
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// α_t (1 − p_t)^γ ce for one element with target t ∈ {0, 1}
double focal(double x, double t, double alpha, double gamma) {
  const double p = sigmoid(x), p_t = t > 0 ? p : 1 - p, a_t = t > 0 ? alpha : 1 - alpha;
  return -a_t * std::pow(1 - p_t, gamma) * std::log(p_t);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    std::printf("usage: test_dispatch path/to/libfastloss_ops.so (%s)\n", argc == 2 ? dlerror() : "no path");
    return 2;
  }
  // (the schemas' trailing `Tensor? scores, int variant, Tensor? positive, int layers`: sparse (labels,
  // scores) targets, the varifocal / quality focal variants and per-layer losses — all off here)
  using Opt = const std::optional<at::Tensor>&;
  using Sig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, Opt, double, double, int64_t,
                                                 int64_t, bool, Opt, int64_t, Opt, int64_t);
  using BackSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&, Opt,
                                                     const at::Tensor&, double, double, int64_t, int64_t, bool, Opt,
                                                     int64_t, Opt, int64_t);
  auto& dispatcher = c10::Dispatcher::singleton();
  auto forward = dispatcher.findSchemaOrThrow("fastloss::sigmoid_focal_loss", "").typed<Sig>();
  auto backward = dispatcher.findSchemaOrThrow("fastloss::sigmoid_focal_loss_backward", "").typed<BackSig>();

  // Two anchors × three classes; anchor 0 is class 1, anchor 1 is background (label 3 = C).
  const double xs[6] = {0.5, 2.0, -1.0, -3.0, 0.25, 4.0};
  const at::Tensor x = at::tensor(at::ArrayRef<double>(xs, 6), at::kDouble).reshape({2, 3});
  const at::Tensor labels = at::tensor({int64_t(1), int64_t(3)}, at::kLong);
  const double alpha = 0.25, gamma = 2.0;
  double want_sum = 0;
  for (int i = 0; i < 6; ++i) want_sum += focal(xs[i], i == 1 ? 1 : 0, alpha, gamma);

  auto [loss, count] =
      forward.call(x, labels, std::nullopt, alpha, gamma, /*sum*/ 1, -100, false, std::nullopt, 0, std::nullopt, 0);
  expect_near("sum", loss.item<double>(), want_sum);
  expect_near("count", static_cast<double>(count.item<int64_t>()), 6);
  auto [mean, mean_count] =
      forward.call(x, labels, std::nullopt, alpha, gamma, /*mean*/ 2, -100, false, std::nullopt, 0, std::nullopt, 0);
  expect_near("mean", mean.item<double>(), want_sum / 6);

  // d sum / dx of element (0, 2) by central differences of the formula
  auto [grad_x, grad_t] = backward.call(at::ones({}, at::kDouble), x, labels, std::nullopt, count, alpha, gamma, 1,
                                        -100, false, std::nullopt, 0, std::nullopt, 0);
  const double h = 1e-6;
  const double fd = (focal(xs[2] + h, 0, alpha, gamma) - focal(xs[2] - h, 0, alpha, gamma)) / (2 * h);
  expect_near("grad (0, 2)", grad_x[0][2].item<double>(), fd, 1e-7);

  // an ignored anchor contributes nothing
  auto [ignored, ignored_count] = forward.call(x, at::tensor({int64_t(1), int64_t(-100)}, at::kLong), std::nullopt,
                                               alpha, gamma, 1, -100, false, std::nullopt, 0, std::nullopt, 0);
  double want_first_row = 0;
  for (int i = 0; i < 3; ++i) want_first_row += focal(xs[i], i == 1 ? 1 : 0, alpha, gamma);
  expect_near("ignore_index", ignored.item<double>(), want_first_row);
  expect_near("ignored count", static_cast<double>(ignored_count.item<int64_t>()), 3);
  return failures == 0 ? 0 : 1;
}
