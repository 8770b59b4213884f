// Every fastloss op's schema, one line each. Kernels register per backend next to their code
// (cpu/<loss>.cpp, cuda/<loss>.cu); fake kernels and autograd in python/fastloss/<loss>.py.
// Schema `float` is a C++ double; `reduction` uses the codes of common/reduction.h.
//
// Defined through the stable C shim when the CPU library loads. Every op is tagged
// pt2_compliant_tag where the running torch can tag from the stable ABI (2.12 and later: its
// torch_library_def_with_tags, looked up at run time); torch 2.10 and 2.11 define them untagged.
#include <dlfcn.h>
#include <torch/csrc/stable/c/shim.h>
#include <torch/csrc/stable/macros.h>
#include <torch/headeronly/util/shim_utils.h>

// The namespace the schemas are defined in: "fastloss"; the CUDA emulation (tests/cuda_emulation)
// defines the same schemas again as fastloss_emulated::*, for its kernels.
#ifndef FASTLOSS_OPS_NAMESPACE
#define FASTLOSS_OPS_NAMESPACE fastloss
#endif
#define FASTLOSS_OPS_STRINGIFY(x) FASTLOSS_OPS_STRINGIFY2(x)
#define FASTLOSS_OPS_STRINGIFY2(x) #x

namespace {

constexpr const char* kSchemas[] = {
    "sigmoid_focal_loss(Tensor inputs, Tensor targets, Tensor? weight, float alpha, float gamma, int reduction, int "
    "ignore_index, bool math_type_loss=False, Tensor? scores=None, int variant=0, Tensor? positive=None, int layers=0) "
    "-> (Tensor loss, Tensor count)",
    "sigmoid_focal_loss_backward(Tensor grad, Tensor inputs, Tensor targets, Tensor? weight, Tensor count, float "
    "alpha, float gamma, int reduction, int ignore_index, bool targets_grad, Tensor? scores=None, int variant=0, "
    "Tensor? positive=None, int layers=0) -> (Tensor grad_inputs, Tensor grad_targets)",
    "box_iou_loss(Tensor pred, Tensor target, Tensor? weight, int kind, int mode, int box_format, float eps, float "
    "gamma, float lambd, int reduction, int convention=0, float aux_eps=-1.) -> Tensor",
    "box_iou_loss_backward(Tensor grad, Tensor pred, Tensor target, Tensor? weight, int kind, int mode, int "
    "box_format, float eps, float gamma, float lambd, int reduction, bool pred_grad, bool target_grad, int "
    "convention=0, float aux_eps=-1.) -> (Tensor grad_pred, Tensor grad_target)",
    "softmax_focal_loss(Tensor input, Tensor target, Tensor? alpha, Tensor? weight, float gamma, float "
    "label_smoothing, int reduction, int ignore_index, bool math_type_loss=False) -> (Tensor loss, Tensor lse, Tensor "
    "count)",
    "softmax_focal_loss_backward(Tensor grad, Tensor input, Tensor target, Tensor? alpha, Tensor? weight, Tensor lse, "
    "float gamma, float label_smoothing, int reduction, int ignore_index) -> Tensor",
    "overlap_sums(Tensor input, Tensor target, int activation, bool squared, int? ignore_index, bool keep_probs, bool "
    "soft_label=False) -> (Tensor sums, Tensor probs)",
    "overlap_score(Tensor sums, Tensor? class_weight, int loss, bool jaccard, float smooth_nr, float smooth_dr, float "
    "alpha, float beta, float gamma, bool include_background, bool batch, int reduction) -> Tensor",
    "overlap_score_backward(Tensor grad, Tensor sums, Tensor? class_weight, int loss, bool jaccard, float smooth_nr, "
    "float smooth_dr, float alpha, float beta, float gamma, bool include_background, bool batch, int reduction) -> "
    "Tensor",
    "balanced_l1_loss(Tensor pred, Tensor target, Tensor? weight, float alpha, float gamma, float beta, int reduction, "
    "bool keep_grad=False) -> (Tensor loss, Tensor kept_grad)",
    "balanced_l1_loss_backward(Tensor grad, Tensor pred, Tensor target, Tensor? weight, float alpha, float gamma, "
    "float beta, int reduction) -> Tensor",
    "balanced_l1_loss_backward_(Tensor grad, Tensor(a!) kept_grad, Tensor? weight, int reduction) -> ()",
    "box_iou_matrix(Tensor boxes1, Tensor boxes2, int kind, int box_format, float eps, int convention, bool aligned, "
    "int out_dtype) -> Tensor",
    "box_iou_matrix_backward(Tensor grad, Tensor boxes1, Tensor boxes2, int kind, int box_format, float eps, int "
    "convention, bool aligned, bool boxes1_grad, bool boxes2_grad) -> (Tensor grad_boxes1, Tensor grad_boxes2)",
    "task_aligned_assign(Tensor pd_scores, Tensor pd_bboxes, Tensor anc_points, Tensor gt_labels, Tensor gt_bboxes, "
    "Tensor mask_gt, int topk, int topk2, int num_classes, float alpha, float beta, float eps, float stride_val, bool "
    "sparse) -> (Tensor target_labels, Tensor target_bboxes, Tensor target_scores, Tensor fg_mask, Tensor "
    "target_gt_idx)",
    "rotated_task_aligned_assign(Tensor pd_scores, Tensor pd_bboxes, Tensor anc_points, Tensor gt_labels, Tensor "
    "gt_rows, Tensor gt_bboxes, Tensor mask_gt, int topk, int topk2, int num_classes, float alpha, float beta, float "
    "eps, bool sparse) -> (Tensor target_labels, Tensor target_bboxes, Tensor target_scores, Tensor fg_mask, Tensor "
    "target_gt_idx)",
    "matching_cost(Tensor pred_logits, Tensor pred_boxes, Tensor tgt_labels, Tensor tgt_boxes, Tensor tgt_mask, int "
    "class_cost, float alpha, float gamma, float cost_class, float cost_bbox, float cost_giou) -> Tensor",
    "probiou(Tensor boxes1, Tensor boxes2, float eps, bool aligned) -> Tensor",
    "probiou_backward(Tensor grad, Tensor boxes1, Tensor boxes2, float eps, bool aligned, bool boxes1_grad, bool "
    "boxes2_grad) -> (Tensor grad_boxes1, Tensor grad_boxes2)",
    "probiou_xywhr(Tensor boxes1, Tensor boxes2, float eps, bool aligned, float floor) -> Tensor",
    "probiou_xywhr_backward(Tensor grad, Tensor boxes1, Tensor boxes2, float eps, bool aligned, float floor, bool "
    "boxes1_grad, bool boxes2_grad) -> (Tensor grad_boxes1, Tensor grad_boxes2)",
    "gaussian_distance(Tensor pred, Tensor target, int representation, int kind, int fun, float tau, float alpha, "
    "float beta, float eps, bool flag) -> Tensor",
    "gaussian_distance_backward(Tensor grad, Tensor pred, Tensor target, int representation, int kind, int fun, float "
    "tau, float alpha, float beta, float eps, bool flag, bool pred_grad, bool target_grad) -> (Tensor grad_pred, "
    "Tensor grad_target)",
    "rotated_box_iou(Tensor boxes1, Tensor boxes2, float eps, bool aligned) -> Tensor",
    "rotated_box_iou_backward(Tensor grad, Tensor boxes1, Tensor boxes2, float eps, bool aligned, bool boxes1_grad, "
    "bool boxes2_grad) -> (Tensor grad_boxes1, Tensor grad_boxes2)",
    "rtdetr_matching_cost(Tensor class_cost, Tensor pred_boxes, Tensor tgt_boxes, float cost_class, float cost_bbox, "
    "float cost_giou) -> Tensor",
    "distribution_focal_loss(Tensor pred, Tensor target, Tensor? weight, float target_max, int reduction) -> (Tensor "
    "loss, Tensor lse)",
    "distribution_focal_loss_backward(Tensor grad, Tensor pred, Tensor target, Tensor? weight, Tensor lse, float "
    "target_max, int reduction) -> Tensor",
    "overlap_sums_backward_(Tensor grad, Tensor(a!) probs, Tensor target, int activation, bool squared, int? "
    "ignore_index, bool soft_label=False) -> ()",
    "overlap_ce_sums(Tensor input, Tensor target, Tensor? ce_weight, float gamma, float label_smoothing, bool squared, "
    "int? ignore_index, bool keep_probs, bool soft_label=False, int activation=0, int term=0, float alpha=-1., int "
    "first_class=0) -> (Tensor sums, Tensor probs, Tensor ce)",
    "overlap_ce_sums_backward_(Tensor grad_sums, Tensor grad_ce, Tensor(a!) probs, Tensor input, Tensor target, "
    "Tensor? ce_weight, float gamma, float label_smoothing, bool squared, int? ignore_index, bool soft_label=False, "
    "int activation=0, int term=0, float alpha=-1., int first_class=0) -> ()",
    "prototype_mask_loss(Tensor coefficients, Tensor protos, Tensor target_masks, Tensor target_index, Tensor boxes, "
    "Tensor areas, Tensor fg_mask, bool overlap) -> Tensor",
    "prototype_mask_loss_backward(Tensor grad, Tensor coefficients, Tensor protos, Tensor target_masks, Tensor "
    "target_index, Tensor boxes, Tensor areas, Tensor fg_mask, bool overlap) -> (Tensor grad_coefficients, Tensor "
    "grad_protos)",
    "linear_sum_assignment(Tensor cost, Tensor? num_targets, bool maximize) -> (Tensor row_ind, Tensor col_ind, "
    "Tensor status)",
};

using DefWithTags = AOTITorchError (*)(TorchLibraryHandle, const char*, const int32_t*, int32_t);
using TagGetter = int32_t (*)();

// A function of the running libtorch_cpu (already loaded: it is this library's dependency), or null.
void* libtorch_symbol(const char* name) {
  void* torch = dlopen("libtorch_cpu.so", RTLD_NOW | RTLD_NOLOAD);
  return torch != nullptr ? dlsym(torch, name) : nullptr;
}

struct Schemas {
  TorchLibraryHandle lib = nullptr;  // kept for the process's lifetime, as TORCH_LIBRARY's

  Schemas() {
    STABLE_TORCH_ERROR_CODE_CHECK(
        aoti_torch_library_init_def(FASTLOSS_OPS_STRINGIFY(FASTLOSS_OPS_NAMESPACE), __FILE__, __LINE__, &lib));
    const auto def_with_tags = reinterpret_cast<DefWithTags>(libtorch_symbol("torch_library_def_with_tags"));
    const auto pt2_compliant = reinterpret_cast<TagGetter>(libtorch_symbol("torch_tag_pt2_compliant_tag"));
    for (const char* schema : kSchemas) {
      if (def_with_tags != nullptr && pt2_compliant != nullptr) {
        const int32_t tag = pt2_compliant();
        STABLE_TORCH_ERROR_CODE_CHECK(def_with_tags(lib, schema, &tag, 1));
      } else {
        STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_library_def(lib, schema));
      }
    }
  }
} schemas;

}  // namespace
