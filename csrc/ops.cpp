// Every fastloss op's schema, one line each. Kernels register per backend next to their code
// (cpu/<loss>.cpp, cuda/<loss>.cu); fake kernels and autograd in python/fastloss/<loss>.py.
// Schema `float` is a C++ double; `reduction` uses the codes of common/reduction.h.
#include <torch/library.h>

TORCH_LIBRARY(fastloss, m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  m.def("sigmoid_focal_loss(Tensor inputs, Tensor targets, Tensor? weight, float alpha, float gamma, int reduction, int ignore_index, bool math_type_loss=False) -> (Tensor loss, Tensor count)", tags);
  m.def("sigmoid_focal_loss_backward(Tensor grad, Tensor inputs, Tensor targets, Tensor? weight, Tensor count, float alpha, float gamma, int reduction, int ignore_index, bool targets_grad) -> (Tensor grad_inputs, Tensor grad_targets)", tags);
  m.def("box_iou_loss(Tensor pred, Tensor target, Tensor? weight, int kind, int mode, int box_format, float eps, float gamma, float lambd, int reduction, int convention=0, float aux_eps=-1.) -> Tensor", tags);
  m.def("box_iou_loss_backward(Tensor grad, Tensor pred, Tensor target, Tensor? weight, int kind, int mode, int box_format, float eps, float gamma, float lambd, int reduction, bool pred_grad, bool target_grad, int convention=0, float aux_eps=-1.) -> (Tensor grad_pred, Tensor grad_target)", tags);
  m.def("softmax_focal_loss(Tensor input, Tensor target, Tensor? alpha, Tensor? weight, float gamma, float label_smoothing, int reduction, int ignore_index, bool math_type_loss=False) -> (Tensor loss, Tensor lse, Tensor count)", tags);
  m.def("softmax_focal_loss_backward(Tensor grad, Tensor input, Tensor target, Tensor? alpha, Tensor? weight, Tensor lse, float gamma, float label_smoothing, int reduction, int ignore_index) -> Tensor", tags);
  m.def("overlap_sums(Tensor input, Tensor target, int activation, bool squared, int? ignore_index, bool keep_probs, bool soft_label=False) -> (Tensor sums, Tensor probs)", tags);
  m.def("overlap_score(Tensor sums, Tensor? class_weight, int loss, bool jaccard, float smooth_nr, float smooth_dr, float alpha, float beta, float gamma, bool include_background, bool batch, int reduction) -> Tensor", tags);
  m.def("overlap_score_backward(Tensor grad, Tensor sums, Tensor? class_weight, int loss, bool jaccard, float smooth_nr, float smooth_dr, float alpha, float beta, float gamma, bool include_background, bool batch, int reduction) -> Tensor", tags);
  m.def("balanced_l1_loss(Tensor pred, Tensor target, Tensor? weight, float alpha, float gamma, float beta, int reduction) -> Tensor", tags);
  m.def("balanced_l1_loss_backward(Tensor grad, Tensor pred, Tensor target, Tensor? weight, float alpha, float gamma, float beta, int reduction) -> Tensor", tags);
  m.def("overlap_sums_backward_(Tensor grad, Tensor(a!) probs, Tensor target, int activation, bool squared, int? ignore_index, bool soft_label=False) -> ()", tags);
}
