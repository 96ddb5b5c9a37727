# Reference values for mskdx.evaluate.stats.calibration_clustered (issue 37): cluster-robust
# (sandwich) standard errors of the calibration intercept and slope, and the clustered Brier CI.
# Run from the repository root:  Rscript tests/data/calibration_clustered_reference.R
# Writes tests/data/calibration_clustered_input.csv (dataset, patient, y, prob; simulated here,
# set.seed(37)) and tests/data/calibration_clustered_reference.csv.
#
# Per data set, on lp = qlogis(prob):
#   slope:     glm(y ~ lp, binomial)              intercept: glm(y ~ 1, offset = lp, binomial)
#   method ml: glm's IRLS; method firth: brglm2's glm(..., method = "brglmFit", type = "AS_mean")
#   se_cluster: sandwich::vcovCL(fit, cluster = ~patient, type = "HC1", cadjust = TRUE), i.e.
#     (X'WX)^-1 (sum_g U_g U_g') (X'WX)^-1 * G/(G-1) * (n-1)/(n-k), U_g the patient's summed
#     score x (y - p); for the brglmFit object the same sandwich (score and information of the
#     likelihood) evaluated at Firth's estimate. This is statsmodels' cov_type="cluster"
#     correction; it reduces to HC1, n/(n-k), with one image per patient.
#   se_cluster_r_default: vcovCL(fit, cluster = ~patient) with its defaults, which for a glm
#     object (not an lm) are type = "HC0", cadjust = TRUE: the factor G/(G-1) only (Stata's for
#     logit), smaller than se_cluster by sqrt((n-1)/(n-k))
#   se_hc1:     sandwich::vcovHC(fit, type = "HC1") (the unclustered robust SE)
#   se_model:   the model-based SE (summary's)
# Brier: svymean(~sq, svydesign(ids = ~patient, data = d)) with sq = (prob - y)^2: the ratio
# estimator with the between-patient linearisation variance; low/high are confint()'s
# (estimate +- z se).
# Design effects (mskdx.evaluate.precision.design_effect): per class (deff_positive: y = 1,
# deff_negative: y = 0) of correct = (prob > 0.5) == y, svymean(~correct, design,
# deff = "replace") (the variance under the cluster design over that of simple random sampling
# with replacement, s^2/n).
# Made with R 4.2.2, sandwich 3.0.2, survey 4.1.1, brglm2 0.9 (Debian bookworm's packages).
suppressPackageStartupMessages({
  library(sandwich)
  library(survey)
  library(brglm2)
})
set.seed(37)

simulate <- function(name, patients, sizes, make) {
  rows <- list()
  for (g in seq_len(patients)) {
    m <- if (length(sizes) == 1) sizes else sample(sizes, 1)
    rows[[g]] <- data.frame(dataset = name, patient = sprintf("P-%04d", g), make(m))
  }
  do.call(rbind, rows)
}
# one label per patient (the papers' design): the images of a patient share its diagnosis and a
# patient effect on the score
patient_label <- function(m) {
  y <- rbinom(1, 1, 0.4)
  lp <- -0.5 + 1.5 * y + rnorm(1, 0, 1) + rnorm(m, 0, 0.7)
  data.frame(y = rep(y, m), prob = plogis(lp))
}
# labels that vary within a patient, miscalibrated (intercept 0.2, slope 0.8) with a shared effect
image_label <- function(m) {
  lp <- rnorm(1, 0, 1) + rnorm(m, 0, 1)
  u <- rnorm(1, 0, 0.8)
  data.frame(y = rbinom(m, 1, plogis(0.2 + 0.8 * lp + u)), prob = plogis(lp))
}
# complete separation: every positive patient's images above every negative's
separated <- function(m) {
  y <- rbinom(1, 1, 0.5)
  lp <- if (y == 1) runif(m, 0.1, 3) else runif(m, -3, -0.1)
  data.frame(y = rep(y, m), prob = plogis(lp))
}
data <- rbind(
  simulate("patient_label", 60, 1:9, patient_label),
  simulate("image_label", 50, 1:6, image_label),
  simulate("singletons", 80, 1, image_label),
  simulate("separated", 30, 2:5, separated)
)
data$prob <- round(data$prob, 6)
write.csv(data, "tests/data/calibration_clustered_input.csv", row.names = FALSE)

tight <- glm.control(epsilon = 1e-12, maxit = 100)
tight_br <- brglmControl(epsilon = 1e-12, maxit = 1000)
rows <- list()
add <- function(...) rows[[length(rows) + 1]] <<- data.frame(...)
for (name in unique(data$dataset)) {
  d <- data[data$dataset == name, ]
  d$lp <- qlogis(d$prob)
  methods <- if (name == "separated") "firth" else c("ml", "firth")
  for (method in methods) {
    for (model in c("intercept", "slope")) {
      f <- if (model == "slope") y ~ lp else y ~ 1
      fit <- if (method == "ml") {
        glm(f, family = binomial, data = d, offset = if (model == "slope") NULL else lp,
            control = tight)
      } else {
        glm(f, family = binomial, data = d, offset = if (model == "slope") NULL else lp,
            method = "brglmFit", type = "AS_mean", control = tight_br)
      }
      term <- if (model == "slope") "lp" else "(Intercept)"
      cl <- vcovCL(fit, cluster = ~patient, type = "HC1", cadjust = TRUE)
      cl_default <- vcovCL(fit, cluster = ~patient)
      hc1 <- vcovHC(fit, type = "HC1")
      add(dataset = name, model = model, method = method, estimate = coef(fit)[[term]],
          se_cluster = sqrt(cl[term, term]),
          se_cluster_r_default = sqrt(cl_default[term, term]), se_hc1 = sqrt(hc1[term, term]),
          se_model = sqrt(vcov(fit)[term, term]),
          patients = length(unique(d$patient)), n = nrow(d))
    }
  }
  d$sq <- (d$prob - d$y)^2
  design <- suppressWarnings(svydesign(ids = ~patient, data = d))  # equal weights, no fpc
  est <- svymean(~sq, design)
  ci <- confint(est, level = 0.95)
  add(dataset = name, model = "brier", method = "survey", estimate = coef(est)[[1]],
      se_cluster = SE(est)[[1]], se_cluster_r_default = NA, se_hc1 = NA, se_model = NA,
      patients = length(unique(d$patient)), n = nrow(d), low = ci[1], high = ci[2])
  for (class in c(1, 0)) {
    k <- d[d$y == class, ]
    k$correct <- as.numeric((k$prob > 0.5) == (k$y == 1))
    est <- svymean(~correct, suppressWarnings(svydesign(ids = ~patient, data = k)),
                   deff = "replace")
    add(dataset = name, model = if (class == 1) "deff_positive" else "deff_negative",
        method = "survey", estimate = deff(est)[[1]], se_cluster = SE(est)[[1]],
        se_cluster_r_default = NA, se_hc1 = NA, se_model = NA,
        patients = length(unique(k$patient)), n = nrow(k))
  }
}
out <- do.call(rbind, lapply(rows, function(r) {
  if (is.null(r$low)) r$low <- NA
  if (is.null(r$high)) r$high <- NA
  r
}))
write.csv(out, "tests/data/calibration_clustered_reference.csv", row.names = FALSE)
cat("R ", R.version$major, ".", R.version$minor, " sandwich ", format(packageVersion("sandwich")),
    " survey ", format(packageVersion("survey")), " brglm2 ", format(packageVersion("brglm2")),
    "\n", sep = "")
