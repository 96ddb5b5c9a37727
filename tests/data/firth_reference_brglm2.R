# Reference values for mskdx.evaluate.stats.firth and the calibration fit's method "firth".
# Run from the repository root:  Rscript tests/data/firth_reference_brglm2.R
# Reads tests/data/firth_input.csv (dataset, y, prob); writes tests/data/firth_reference_brglm2.csv.
# Per data set, two recalibration models on lp = qlogis(prob):
#   slope:     glm(y ~ lp,                 method = "brglmFit", type = "AS_mean")  (Firth 1993)
#   intercept: glm(y ~ 1, offset = lp,     method = "brglmFit", type = "AS_mean")
# and, for comparison, the ML fit (glm's default IRLS), which is meaningless under separation.
# Wald intervals are brglm2's confint() (estimate +- z se). Made with R 4.2.2 and brglm2 0.9
# (Debian bookworm's r-base-core and r-cran-brglm2); logistf, whose profile penalised-likelihood
# intervals mskdx also computes, is not packaged there, so those are checked in Python instead.
suppressPackageStartupMessages(library(brglm2))
tight <- brglmControl(epsilon = 1e-12, maxit = 1000)
data <- read.csv("tests/data/firth_input.csv")
rows <- list()
for (name in unique(data$dataset)) {
  d <- data[data$dataset == name, ]
  d$lp <- qlogis(d$prob)
  fits <- list(
    slope = glm(y ~ lp, family = binomial, data = d,
                method = "brglmFit", type = "AS_mean", control = tight),
    intercept = glm(y ~ 1, offset = lp, family = binomial, data = d,
                    method = "brglmFit", type = "AS_mean", control = tight)
  )
  ml <- suppressWarnings(list(
    slope = glm(y ~ lp, family = binomial, data = d),
    intercept = glm(y ~ 1, offset = lp, family = binomial, data = d)
  ))
  for (model in names(fits)) {
    fit <- fits[[model]]
    term <- if (model == "slope") "lp" else "(Intercept)"
    est <- coef(fit)[[term]]
    se <- summary(fit)$coefficients[term, "Std. Error"]
    wald <- confint(fit, parm = term, level = 0.95)
    rows[[length(rows) + 1]] <- data.frame(
      dataset = name, model = model, estimate = est, se = se,
      wald_low = wald[1], wald_high = wald[2],
      ml_estimate = coef(ml[[model]])[[term]]
    )
  }
}
out <- do.call(rbind, rows)
write.csv(out, "tests/data/firth_reference_brglm2.csv", row.names = FALSE)
cat("R ", R.version$major, ".", R.version$minor, " brglm2 ", as.character(packageVersion("brglm2")),
    "\n", sep = "")
