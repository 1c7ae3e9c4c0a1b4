// bench_ceres: Ceres Solver 2.1 on the benchmark problems (C++17), with
// analytic dense Jacobians in least-squares form (see bench_problems.h) and
// one thread:
//   P1 n = 10, 100, 1000: Levenberg-Marquardt with DENSE_NORMAL_CHOLESKY
//      (Eigen and LAPACK), DENSE_QR, and the native robust-loss variant
//      (residual r_i = a_i'x - b_i per block, ScaledLoss(SoftLOneLoss(delta),
//      w_i)); time to the target, checked by an IterationCallback;
//   P2 (vardim) n = 1000: LM with DENSE_NORMAL_CHOLESKY and DENSE_QR;
//   P3 (TV denoising 256x256) and P4 (extended Rosenbrock n = 1000): LM
//      with SPARSE_NORMAL_CHOLESKY (SuiteSparse) on the least-squares form,
//      and the GradientProblem solver (L-BFGS, m = 20) on E and grad E;
//   NIST: the 19 problems from both starts as in Ceres' examples/nist.cc
//      (tolerances = machine epsilon, 10000 iterations), one residual block
//      per problem with the analytic Jacobian, DENSE_QR and
//      DENSE_NORMAL_CHOLESKY, judged by LRE.
// Prints RESULT lines (see bench/run).
#include <ceres/ceres.h>
#include <ceres/version.h>
#include <cblas.h>
#include <glog/logging.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bench_problems.h"
#include "nist_models.h"

namespace {

void usage(FILE *f) {
    std::fprintf(f,
                 "usage: bench_ceres [--data DIR] [--nist-dir DIR] [--only SECTION]\n"
                 "\n"
                 "Ceres Solver (LM: DENSE_NORMAL_CHOLESKY, DENSE_QR, native SoftLOne\n"
                 "loss) on P1 (n = 10, 100, 1000), P2 (vardim, n = 1000) and the\n"
                 "NIST problems; LM SPARSE_NORMAL_CHOLESKY and GradientProblem\n"
                 "L-BFGS on P3 (TV denoising 256x256) and P4 (extended Rosenbrock\n"
                 "n = 1000); one thread.\n"
                 "\n"
                 "  --data DIR      folder of bench_data's files (default bench-data)\n"
                 "  --nist-dir DIR  folder holding nist/*.dat (default tests/data)\n"
                 "  --only NAME     inner, p3, p4 or nist\n"
                 "  --help          this text\n");
}

// ------------------------------------------------------------------ P1
// f_i = r_i sqrt(2 w_i / (q_i + 1)), i < m (one block of m residuals)
class P1Data : public ceres::CostFunction {
  public:
    explicit P1Data(const bp_p1 *P) : P_(P), r_(static_cast<size_t>(P->m)) {
        set_num_residuals(P->m);
        mutable_parameter_block_sizes()->push_back(P->n);
    }
    bool Evaluate(double const *const *params, double *f, double **jac) const override {
        const double *x = params[0];
        int m = P_->m, n = P_->n;
        double d2 = P_->delta * P_->delta;
        std::memcpy(r_.data(), P_->b, sizeof(double) * static_cast<size_t>(m));
        cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, 1.0, P_->Ar, n, x, 1, -1.0,
                    r_.data(), 1);
        for (int i = 0; i < m; i++) {
            double ri = r_[i], q = std::sqrt(1 + ri * ri / d2);
            f[i] = ri * std::sqrt(2 * P_->w[i] / (q + 1));
            if (jac && jac[0]) {
                double s = std::sqrt(P_->w[i] * (q + 1) / 2) / q;
                const double *a = P_->Ar + static_cast<size_t>(i) * n;
                double *row = jac[0] + static_cast<size_t>(i) * n;
                for (int j = 0; j < n; j++) row[j] = s * a[j];
            }
        }
        return true;
    }

  private:
    const bp_p1 *P_;
    mutable std::vector<double> r_;
};

// f_{m+j} = sqrt(mu) x_j
class P1Ridge : public ceres::CostFunction {
  public:
    P1Ridge(int n, double mu) : n_(n), s_(std::sqrt(mu)) {
        set_num_residuals(n);
        mutable_parameter_block_sizes()->push_back(n);
    }
    bool Evaluate(double const *const *params, double *f, double **jac) const override {
        for (int j = 0; j < n_; j++) f[j] = s_ * params[0][j];
        if (jac && jac[0]) {
            std::memset(jac[0], 0, sizeof(double) * static_cast<size_t>(n_) * n_);
            for (int j = 0; j < n_; j++) jac[0][static_cast<size_t>(j) * n_ + j] = s_;
        }
        return true;
    }

  private:
    int n_;
    double s_;
};

// the native robust variant: one residual r_i = a_i'x - b_i per block
class P1Row : public ceres::CostFunction {
  public:
    P1Row(const bp_p1 *P, int i) : P_(P), i_(i) {
        set_num_residuals(1);
        mutable_parameter_block_sizes()->push_back(P->n);
    }
    bool Evaluate(double const *const *params, double *f, double **jac) const override {
        int n = P_->n;
        const double *a = P_->Ar + static_cast<size_t>(i_) * n;
        f[0] = cblas_ddot(n, a, 1, params[0], 1) - P_->b[i_];
        if (jac && jac[0]) std::memcpy(jac[0], a, sizeof(double) * static_cast<size_t>(n));
        return true;
    }

  private:
    const bp_p1 *P_;
    int i_;
};

// ------------------------------------------------------------------ P2
class P2Cost : public ceres::CostFunction {
  public:
    explicit P2Cost(int n) : n_(n) {
        set_num_residuals(n + 2);
        mutable_parameter_block_sizes()->push_back(n);
    }
    bool Evaluate(double const *const *params, double *f, double **jac) const override {
        const double *x = params[0];
        double S = bp_p2_S(n_, x);
        for (int j = 0; j < n_; j++) f[j] = x[j] - 1;
        f[n_] = S;
        f[n_ + 1] = S * S;
        if (jac && jac[0]) {
            double *J = jac[0];
            std::memset(J, 0, sizeof(double) * static_cast<size_t>(n_ + 2) * n_);
            for (int j = 0; j < n_; j++) {
                J[static_cast<size_t>(j) * n_ + j] = 1;
                J[static_cast<size_t>(n_) * n_ + j] = j + 1.0;
                J[static_cast<size_t>(n_ + 1) * n_ + j] = 2 * S * (j + 1.0);
            }
        }
        return true;
    }

  private:
    int n_;
};

// stop at the target
class StopAt : public ceres::IterationCallback {
  public:
    explicit StopAt(double target) : target_(target) {}
    ceres::CallbackReturnType operator()(const ceres::IterationSummary &s) override {
        last_cost = s.cost;
        return s.cost <= target_ ? ceres::SOLVER_TERMINATE_SUCCESSFULLY
                                 : ceres::SOLVER_CONTINUE;
    }
    double last_cost = 0;

  private:
    double target_;
};

enum Variant { DNC_EIGEN, DNC_LAPACK, QR_EIGEN, QR_LAPACK, SOFTLONE };

const char *variant_name(Variant v) {
    switch (v) {
    case DNC_EIGEN: return "Ceres LM DENSE_NORMAL_CHOLESKY (Eigen)";
    case DNC_LAPACK: return "Ceres LM DENSE_NORMAL_CHOLESKY (LAPACK)";
    case QR_EIGEN: return "Ceres LM DENSE_QR (Eigen)";
    case QR_LAPACK: return "Ceres LM DENSE_QR (LAPACK)";
    default: return "Ceres LM SoftLOne loss (DENSE_NORMAL_CHOLESKY)";
    }
}

void set_linear(ceres::Solver::Options &o, Variant v) {
    o.linear_solver_type = (v == QR_EIGEN || v == QR_LAPACK) ? ceres::DENSE_QR
                                                             : ceres::DENSE_NORMAL_CHOLESKY;
    o.dense_linear_algebra_library_type =
        (v == DNC_LAPACK || v == QR_LAPACK) ? ceres::LAPACK : ceres::EIGEN;
}

ceres::Solver::Options base_options() {
    ceres::Solver::Options o;
    o.minimizer_type = ceres::TRUST_REGION;
    o.trust_region_strategy_type = ceres::LEVENBERG_MARQUARDT;
    o.num_threads = 1;
    o.logging_type = ceres::SILENT;
    o.minimizer_progress_to_stdout = false;
    o.max_num_iterations = 1000;
    o.function_tolerance = 1e-16;
    o.gradient_tolerance = 1e-16;
    o.parameter_tolerance = 1e-16;
    return o;
}

ceres::Problem::Options problem_options() {
    ceres::Problem::Options po;
    // the cost functions are stack/vector-owned here
    po.cost_function_ownership = ceres::DO_NOT_TAKE_OWNERSHIP;
    po.loss_function_ownership = ceres::TAKE_OWNERSHIP;
    return po;
}

// reps solves from x0 (x: the problem's parameter storage); the median time
double timed_solves(const ceres::Solver::Options &o, ceres::Problem &problem,
                    std::vector<double> &x, const std::vector<double> &x0, int reps,
                    ceres::Solver::Summary *sum) {
    std::vector<double> t(static_cast<size_t>(reps));
    for (int r = 0; r < reps; r++) {
        std::copy(x0.begin(), x0.end(), x.begin()); // x keeps its storage
        double t0 = bp_now();
        ceres::Solve(o, &problem, sum);
        t[static_cast<size_t>(r)] = bp_now() - t0;
    }
    return bp_median(t.data(), reps);
}

void run_p1(const bp_p1 &P, Variant v, int reps, const char *why_reps) {
    int n = P.n, m = P.m;
    std::vector<double> x(static_cast<size_t>(n), 0.0);
    ceres::Problem problem(problem_options());
    P1Data data(&P);
    P1Ridge ridge(n, P.mu);
    std::vector<std::unique_ptr<P1Row>> rows;
    if (v == SOFTLONE) {
        for (int i = 0; i < m; i++) {
            rows.emplace_back(new P1Row(&P, i));
            problem.AddResidualBlock(
                rows.back().get(),
                new ceres::ScaledLoss(new ceres::SoftLOneLoss(P.delta), P.w[i],
                                      ceres::TAKE_OWNERSHIP),
                x.data());
        }
    } else {
        problem.AddResidualBlock(&data, nullptr, x.data());
    }
    problem.AddResidualBlock(&ridge, nullptr, x.data());
    double target = bp_p1_target(&P);
    StopAt stop(target);
    ceres::Solver::Options o = base_options();
    set_linear(o, v);
    o.callbacks.push_back(&stop);
    ceres::Solver::Summary sum;
    double med = timed_solves(o, problem, x, std::vector<double>(x.size(), 0.0), reps, &sum);
    if (std::getenv("BENCH_VERBOSE")) std::fprintf(stderr, "%s\n", sum.FullReport().c_str());
    bool ok = sum.final_cost <= target;
    char cas[64], extra[768];
    std::snprintf(cas, sizeof cas, "P1 n=%d", n);
    std::snprintf(extra, sizeof extra,
                  ", \"iters\": %d, \"evals\": %d, \"jacobians\": %d, \"E\": %.15g, "
                  "\"E_minus_Estar\": %.3g, \"termination\": \"%s\", \"reps_note\": \"%s\"",
                  static_cast<int>(sum.iterations.size()) - 1,
                  sum.num_residual_evaluations, sum.num_jacobian_evaluations,
                  sum.final_cost, sum.final_cost - P.Estar,
                  ceres::TerminationTypeToString(sum.termination_type), why_reps);
    bp_result("inner", cas, variant_name(v), med, reps, ok, extra);
    std::fprintf(stderr, "%s %s: %.5f s, %d it, E - E* = %.2e %s\n", variant_name(v), cas,
                 med, static_cast<int>(sum.iterations.size()) - 1, sum.final_cost - P.Estar,
                 ok ? "" : "NOT REACHED");
}

void run_p2(Variant v, int reps, const char *why_reps) {
    int n = 1000;
    std::vector<double> x(static_cast<size_t>(n)), x0(static_cast<size_t>(n));
    bp_p2_x0(n, x0.data());
    ceres::Problem problem(problem_options());
    P2Cost cost(n);
    problem.AddResidualBlock(&cost, nullptr, x.data());
    StopAt stop(BP_P2_TARGET);
    ceres::Solver::Options o = base_options();
    set_linear(o, v);
    o.callbacks.push_back(&stop);
    ceres::Solver::Summary sum;
    double med = timed_solves(o, problem, x, x0, reps, &sum);
    bool ok = sum.final_cost <= BP_P2_TARGET;
    char extra[512];
    std::snprintf(extra, sizeof extra,
                  ", \"iters\": %d, \"evals\": %d, \"E\": %.3g, \"termination\": \"%s\", "
                  "\"reps_note\": \"%s\"",
                  static_cast<int>(sum.iterations.size()) - 1, sum.num_residual_evaluations,
                  sum.final_cost, ceres::TerminationTypeToString(sum.termination_type),
                  why_reps);
    bp_result("inner", "P2 vardim n=1000", variant_name(v), med, reps, ok, extra);
    std::fprintf(stderr, "%s P2: %.5f s, %d it, E = %.2e %s (%s)\n", variant_name(v), med,
                 static_cast<int>(sum.iterations.size()) - 1, sum.final_cost,
                 ok ? "" : "NOT REACHED", sum.message.c_str());
}

int section_inner(const char *dir) {
    for (int k = 0; k < BP_P1_CASES; k++) {
        bp_p1 P;
        char path[1024];
        bp_p1_path(path, sizeof path, dir, bp_p1_sizes[k]);
        if (bp_p1_read(&P, path) != 0) return -1;
        int reps = bp_p1_reps[k];
        for (Variant v : {DNC_EIGEN, DNC_LAPACK, QR_EIGEN, QR_LAPACK, SOFTLONE}) {
            int r = bp_reps(reps);
            const char *why = "";
            // the slow configurations: in the first of bench/run's rounds only
            if (bp_p1_sizes[k] == 1000 && v == QR_EIGEN) {
                r = bp_reps_slow(1); // ~20 s a solve
                why = "1 repetition (slow configuration, ~20 s a solve)";
            } else if (bp_p1_sizes[k] == 1000 && v == QR_LAPACK) {
                r = bp_reps_slow(3); // ~7 s a solve
                why = "3 repetitions (slow configuration)";
            }
            if (*why && !bp_first_round()) continue;
            run_p1(P, v, r, why);
        }
        bp_p1_free(&P);
    }
    run_p2(DNC_EIGEN, bp_reps(5), "");
    run_p2(DNC_LAPACK, bp_reps(5), "");
    if (bp_first_round()) run_p2(QR_LAPACK, bp_reps_slow(1), "1 repetition (slow configuration)");
    return 0;
}

// ------------------------------------------------------------------ P3, P4
// P3 (smoothed-TV denoising) in least-squares form, one parameter block of
// size 1 per pixel: the data residual f = x_p - y_p (1/2 f^2 = the data
// term) and the TV residual f = sqrt(2 wt) (eps^2 + g1^2 + g2^2)^(1/4)
// (1/2 f^2 = wt phi_p) on (x_p, x_{p+1}, x_{p+nc}), or on two pixels at the
// last column / row; the corner pixel's term is the constant wt eps (added
// to Ceres' cost when compared with E). df/dg = sqrt(2 wt)/2 g s^(-3/4),
// s = eps^2 + |g|^2.
class P3DataCost : public ceres::SizedCostFunction<1, 1> {
  public:
    explicit P3DataCost(double y) : y_(y) {}
    bool Evaluate(double const *const *p, double *f, double **jac) const override {
        f[0] = p[0][0] - y_;
        if (jac && jac[0]) jac[0][0] = 1;
        return true;
    }

  private:
    double y_;
};
class P3Tv3Cost : public ceres::SizedCostFunction<1, 1, 1, 1> {
  public:
    P3Tv3Cost(double wt, double eps) : c_(std::sqrt(2 * wt)), e2_(eps * eps) {}
    bool Evaluate(double const *const *p, double *f, double **jac) const override {
        double g1 = p[1][0] - p[0][0], g2 = p[2][0] - p[0][0], s = e2_ + g1 * g1 + g2 * g2;
        double q = std::sqrt(std::sqrt(s));
        f[0] = c_ * q;
        if (jac) {
            double k = 0.5 * c_ / (s / q); // s^(-3/4) = q / s
            if (jac[0]) jac[0][0] = -k * (g1 + g2);
            if (jac[1]) jac[1][0] = k * g1;
            if (jac[2]) jac[2][0] = k * g2;
        }
        return true;
    }

  private:
    double c_, e2_;
};
class P3Tv2Cost : public ceres::SizedCostFunction<1, 1, 1> {
  public:
    P3Tv2Cost(double wt, double eps) : c_(std::sqrt(2 * wt)), e2_(eps * eps) {}
    bool Evaluate(double const *const *p, double *f, double **jac) const override {
        double g = p[1][0] - p[0][0], s = e2_ + g * g, q = std::sqrt(std::sqrt(s));
        f[0] = c_ * q;
        if (jac) {
            double k = 0.5 * c_ / (s / q);
            if (jac[0]) jac[0][0] = -k * g;
            if (jac[1]) jac[1][0] = k * g;
        }
        return true;
    }

  private:
    double c_, e2_;
};

// P3 and P4 as GradientProblems (Ceres' line-search minimizer, L-BFGS)
class P3Gradient : public ceres::FirstOrderFunction {
  public:
    explicit P3Gradient(const bp_p3 *P) : P_(P) {}
    bool Evaluate(const double *x, double *cost, double *g) const override {
        *cost = bp_p3_value_grad(P_, x, g);
        return true;
    }
    int NumParameters() const override { return P_->n; }

  private:
    const bp_p3 *P_;
};
class P4Gradient : public ceres::FirstOrderFunction {
  public:
    explicit P4Gradient(int n) : n_(n) {}
    bool Evaluate(const double *x, double *cost, double *g) const override {
        *cost = bp_p4_value_grad(n_, x, g);
        return true;
    }
    int NumParameters() const override { return n_; }

  private:
    int n_;
};

// P4 in least-squares form: one block (a, b) per pair, f = sqrt(2) (10 (b - a^2),
// 1 - a), 1/2 |f|^2 = E
class P4PairCost : public ceres::SizedCostFunction<2, 2> {
  public:
    bool Evaluate(double const *const *p, double *f, double **jac) const override {
        const double r2 = std::sqrt(2.0), a = p[0][0], b = p[0][1];
        f[0] = r2 * 10 * (b - a * a);
        f[1] = r2 * (1 - a);
        if (jac && jac[0]) {
            jac[0][0] = -r2 * 20 * a;
            jac[0][1] = r2 * 10;
            jac[0][2] = -r2;
            jac[0][3] = 0;
        }
        return true;
    }
};

class StopAtGrad : public ceres::IterationCallback {
  public:
    explicit StopAtGrad(double target) : target_(target) {}
    ceres::CallbackReturnType operator()(const ceres::IterationSummary &s) override {
        return s.cost <= target_ ? ceres::SOLVER_TERMINATE_SUCCESSFULLY
                                 : ceres::SOLVER_CONTINUE;
    }

  private:
    double target_;
};

ceres::LinearSolverType sparse_solver_ok() {
    return ceres::IsSparseLinearAlgebraLibraryTypeAvailable(ceres::SUITE_SPARSE)
               ? ceres::SPARSE_NORMAL_CHOLESKY
               : ceres::DENSE_QR;
}

// LM with SPARSE_NORMAL_CHOLESKY (SuiteSparse), time to target; offset: the
// constant E - cost
void run_sparse_lm(ceres::Problem &problem, std::vector<double> &x,
                   const std::vector<double> &x0, const char *cas, double target,
                   double offset, int reps, const char *why_reps) {
    StopAt stop(target - offset);
    ceres::Solver::Options o = base_options();
    o.linear_solver_type = sparse_solver_ok();
    o.sparse_linear_algebra_library_type = ceres::SUITE_SPARSE;
    o.max_num_iterations = 500;
    o.max_solver_time_in_seconds = 120;
    o.callbacks.push_back(&stop);
    ceres::Solver::Summary sum;
    double med = timed_solves(o, problem, x, x0, reps, &sum), E = sum.final_cost + offset;
    bool ok = E <= target;
    char extra[768];
    std::snprintf(extra, sizeof extra,
                  ", \"iters\": %d, \"evals\": %d, \"E\": %.15g, \"termination\": \"%s\", "
                  "\"linear_solver\": \"%s\", \"reps_note\": \"%s\"",
                  static_cast<int>(sum.iterations.size()) - 1, sum.num_residual_evaluations,
                  E, ceres::TerminationTypeToString(sum.termination_type),
                  ceres::LinearSolverTypeToString(o.linear_solver_type), why_reps);
    std::string name = std::string("Ceres LM ") +
                       ceres::LinearSolverTypeToString(o.linear_solver_type);
    bp_result("inner", cas, name.c_str(), med, reps, ok, extra);
    std::fprintf(stderr, "%s %s: %.5f s, %d it, E = %.12g %s (%s)\n", name.c_str(), cas, med,
                 static_cast<int>(sum.iterations.size()) - 1, E, ok ? "" : "NOT REACHED",
                 sum.message.c_str());
}

// GradientProblem, LBFGS line search (m = 20 as libLBFGS), time to target
void run_gradient(ceres::FirstOrderFunction *fn, const std::vector<double> &x0,
                  const char *cas, double target, int reps) {
    ceres::GradientProblem problem(fn); // takes ownership of fn
    StopAtGrad stop(target);
    ceres::GradientProblemSolver::Options o;
    o.line_search_direction_type = ceres::LBFGS;
    o.max_lbfgs_rank = 20;
    o.max_num_iterations = 100000;
    o.function_tolerance = 1e-16;
    o.gradient_tolerance = 1e-16;
    o.parameter_tolerance = 1e-16;
    o.logging_type = ceres::SILENT;
    o.callbacks.push_back(&stop);
    std::vector<double> x, t(static_cast<size_t>(reps));
    ceres::GradientProblemSolver::Summary sum;
    for (int r = 0; r < reps; r++) {
        x = x0;
        double t0 = bp_now();
        ceres::Solve(o, problem, x.data(), &sum);
        t[static_cast<size_t>(r)] = bp_now() - t0;
    }
    double med = bp_median(t.data(), reps);
    bool ok = sum.final_cost <= target;
    char extra[512];
    std::snprintf(extra, sizeof extra,
                  ", \"iters\": %d, \"evals\": %d, \"E\": %.15g, \"termination\": \"%s\"",
                  static_cast<int>(sum.iterations.size()) - 1, sum.num_cost_evaluations,
                  sum.final_cost, ceres::TerminationTypeToString(sum.termination_type));
    bp_result("inner", cas, "Ceres GradientProblem L-BFGS m=20", med, reps, ok, extra);
    std::fprintf(stderr, "Ceres GradientProblem L-BFGS %s: %.5f s, %d it, E = %.12g %s\n",
                 cas, med, static_cast<int>(sum.iterations.size()) - 1, sum.final_cost,
                 ok ? "" : "NOT REACHED");
}

int section_p3(const char *dir) {
    bp_p3 P;
    if (bp_p3_read(&P, dir) != 0) return -1;
    int n = P.n, nc = P.nc;
    char cas[64];
    std::snprintf(cas, sizeof cas, "P3 TV %dx%d", P.nr, P.nc);
    std::vector<double> x0(P.y, P.y + n), x = x0;
    {
        ceres::Problem problem(problem_options());
        std::vector<std::unique_ptr<P3DataCost>> data;
        P3Tv3Cost tv3(P.wt, P.eps);
        P3Tv2Cost tv2(P.wt, P.eps);
        for (int q = 0; q < n; q++) {
            data.emplace_back(new P3DataCost(P.y[q]));
            problem.AddResidualBlock(data.back().get(), nullptr, &x[q]);
        }
        double offset = 0;
        for (int q = 0; q < n; q++) {
            bool a1 = q % nc != nc - 1, a2 = q + nc < n;
            if (a1 && a2) problem.AddResidualBlock(&tv3, nullptr, &x[q], &x[q + 1], &x[q + nc]);
            else if (a1) problem.AddResidualBlock(&tv2, nullptr, &x[q], &x[q + 1]);
            else if (a2) problem.AddResidualBlock(&tv2, nullptr, &x[q], &x[q + nc]);
            else offset += P.wt * P.eps;
        }
        // ~20 s of CPU a solve (70 LM iterations): a slow configuration,
        // in the first of bench/run's rounds only
        if (bp_first_round())
            run_sparse_lm(problem, x, x0, cas, bp_p3_target(&P), offset, bp_reps_slow(1),
                          "1 repetition (slow configuration)");
    }
    run_gradient(new P3Gradient(&P), x0, cas, bp_p3_target(&P), bp_reps(5));
    bp_p3_free(&P);
    return 0;
}

int section_p4() {
    int n = BP_P4_N;
    std::vector<double> x0(static_cast<size_t>(n)), x;
    bp_p4_x0(n, x0.data());
    x = x0;
    {
        ceres::Problem problem(problem_options());
        P4PairCost cost;
        for (int k = 0; k + 1 < n; k += 2) problem.AddResidualBlock(&cost, nullptr, &x[k]);
        run_sparse_lm(problem, x, x0, "P4 Rosenbrock n=1000", BP_P4_TARGET, 0, bp_reps(11),
                      "");
    }
    run_gradient(new P4Gradient(n), x0, "P4 Rosenbrock n=1000", BP_P4_TARGET, bp_reps(11));
    return 0;
}

// ------------------------------------------------------------------ NIST
class NistCost : public ceres::CostFunction {
  public:
    explicit NistCost(const nist_problem *pr) : pr_(pr) {
        set_num_residuals(pr->nobs);
        mutable_parameter_block_sizes()->push_back(pr->spec->np);
    }
    bool Evaluate(double const *const *params, double *f, double **jac) const override {
        nist_residuals(pr_, params[0], f, jac ? jac[0] : nullptr);
        // a trial point where the model overflows: tell Ceres the
        // evaluation failed (the step is rejected) instead of handing it
        // non-finite numbers
        for (int i = 0; i < pr_->nobs; i++)
            if (!std::isfinite(f[i])) return false;
        if (jac && jac[0])
            for (int k = 0; k < pr_->nobs * pr_->spec->np; k++)
                if (!std::isfinite(jac[0][k])) return false;
        return true;
    }

  private:
    const nist_problem *pr_;
};

int section_nist(const char *nist_dir) {
    nist_problem prob[NIST_NUM_PROBLEMS];
    if (nist_load_all(prob, nist_dir) != 0) return -1;
    for (Variant v : {QR_EIGEN, DNC_EIGEN}) {
        ceres::Solver::Options o = base_options();
        set_linear(o, v);
        const double eps = std::numeric_limits<double>::epsilon();
        o.max_num_iterations = 10000;
        o.function_tolerance = eps;
        o.gradient_tolerance = eps;
        o.parameter_tolerance = eps;
        int reps = bp_reps(5), passed = 0, iters = 0;
        std::vector<double> t(static_cast<size_t>(reps));
        double lre_sum = 0, lre_min = 99;
        std::string fails;
        for (int r = 0; r < reps; r++) {
            double tot = 0;
            passed = 0, iters = 0, lre_sum = 0, lre_min = 99;
            fails.clear();
            for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
                const nist_problem *pr = &prob[i];
                int np = pr->spec->np;
                NistCost cost(pr);
                for (int st = 0; st < 2; st++) {
                    double b[NIST_MAX_PARAMS];
                    std::memcpy(b, pr->start[st], sizeof(double) * static_cast<size_t>(np));
                    ceres::Problem problem(problem_options());
                    problem.AddResidualBlock(&cost, nullptr, b);
                    ceres::Solver::Summary sum;
                    double t0 = bp_now();
                    ceres::Solve(o, &problem, &sum);
                    tot += bp_now() - t0;
                    double lre = nist_lre(np, b, pr->cert);
                    bool ok = lre >= NIST_MIN_LRE;
                    passed += ok;
                    iters += static_cast<int>(sum.iterations.size()) - 1;
                    lre_sum += lre;
                    lre_min = std::fmin(lre_min, lre);
                    if (!ok) {
                        if (!fails.empty()) fails += " ";
                        fails += std::string(pr->spec->name) + "/" + std::to_string(st + 1);
                    }
                }
            }
            t[static_cast<size_t>(r)] = tot;
        }
        char extra[1024];
        std::snprintf(extra, sizeof extra,
                      ", \"passed\": %d, \"starts\": 38, \"avg_lre\": %.3f, \"min_lre\": %.3f, "
                      "\"iters\": %d, \"failures\": \"%s\"",
                      passed, lre_sum / 38, lre_min, iters, fails.c_str());
        const char *name = v == QR_EIGEN ? "Ceres LM DENSE_QR" : "Ceres LM DENSE_NORMAL_CHOLESKY";
        bp_result("nist", "NIST 19 problems x 2 starts", name, bp_median(t.data(), reps), reps,
                  passed == 38, extra);
        std::fprintf(stderr, "%s NIST: %d/38, avg LRE %.2f, %.4f s %s\n", name, passed,
                     lre_sum / 38, bp_median(t.data(), reps), fails.c_str());
    }
    nist_free_all(prob);
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    const char *nist_dir = NULL;
    int done = bp_parse_args(argc, argv, "bench_ceres", usage, &nist_dir);
    if (done >= 0) return done;
    google::InitGoogleLogging(argv[0]);
    FLAGS_minloglevel = 2; // errors only: no per-step warnings on stderr
    std::printf("VERSION ceres %s\n", CERES_VERSION_STRING);
    const char *dir = bp_data_dir(argc, argv);
    int rc = 0;
    if (bp_selected(argc, argv, "inner") && section_inner(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "p3") && section_p3(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "p4") && section_p4() != 0) rc = 1;
    if (bp_selected(argc, argv, "nist") && section_nist(nist_dir) != 0) rc = 1;
    return rc;
}
