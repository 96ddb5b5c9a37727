# R's answers on the degenerate inputs that docs/statistics.md names, for tests/unit/test_degenerate.py.
# Run from the repository root:  Rscript tests/data/degenerate_reference.R
# Writes tests/data/degenerate_reference.csv: case, quantity, value (NA where R gives NA/NaN,
# "error" where it refuses). Made with R 4.2.2 and pROC 1.18.0 (Debian bookworm).
# DeLong (pROC): controls = 0, cases = 1, a higher score = case (direction "<").
# Wilson: prop.test(k, n, correct = FALSE)$conf.int (the Wilson score interval).
# McNemar: mcnemar.test(matrix(c(5, c, b, 5), 2)), with and without continuity correction.
suppressPackageStartupMessages(library(pROC))
cases <- list(
  tied = list(y = c(0, 0, 0, 1, 1, 1), a = rep(0.5, 6), b = c(0.1, 0.4, 0.35, 0.8, 0.2, 0.9)),
  separated = list(y = c(0, 0, 0, 1, 1, 1), a = c(0.1, 0.2, 0.3, 0.7, 0.8, 0.9),
                   b = c(0.3, 0.2, 0.1, 0.9, 0.8, 0.7)),
  reversed = list(y = c(0, 0, 0, 1, 1, 1), a = c(0.7, 0.8, 0.9, 0.1, 0.2, 0.3),
                  b = c(0.1, 0.4, 0.35, 0.8, 0.2, 0.9)),
  one_each = list(y = c(0, 1), a = c(0.2, 0.8), b = c(0.8, 0.2)),
  perfect_vs_constant = list(y = c(1, 1, 0, 0), a = c(0.9, 0.8, 0.2, 0.1), b = rep(0, 4)),
  quasi = list(y = c(0, 0, 0, 1, 1, 1), a = c(0.1, 0.2, 0.5, 0.5, 0.8, 0.9),
               b = c(0.1, 0.4, 0.35, 0.8, 0.2, 0.9))
)
out <- list()
add <- function(case, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(case = case, quantity = quantity, value = value)
}
fmt <- function(x) if (length(x) == 0 || is.na(x)) NA else sprintf("%.12g", x)
for (name in names(cases)) {
  k <- cases[[name]]
  ra <- roc(k$y, k$a, levels = c(0, 1), direction = "<", quiet = TRUE)
  rb <- roc(k$y, k$b, levels = c(0, 1), direction = "<", quiet = TRUE)
  add(name, "auc_a", fmt(as.numeric(auc(ra))))
  v <- tryCatch(fmt(var(ra, method = "delong")), error = function(e) "error")
  add(name, "var_a", v)
  ci <- tryCatch(suppressWarnings(as.numeric(ci.auc(ra, method = "delong"))),
                 error = function(e) c(NA, NA, NA))
  add(name, "ci_low_a", fmt(ci[1]))
  add(name, "ci_high_a", fmt(ci[3]))
  test <- tryCatch(suppressWarnings(roc.test(ra, rb, method = "delong", paired = TRUE)),
                   error = function(e) NULL)
  add(name, "z", if (is.null(test)) "error" else fmt(unname(test$statistic)))
  add(name, "p", if (is.null(test)) "error" else fmt(test$p.value))
}
for (kn in list(c(0, 1), c(1, 1), c(0, 3), c(3, 3), c(1, 2), c(0, 20), c(20, 20))) {
  ci <- suppressWarnings(prop.test(kn[1], kn[2], correct = FALSE)$conf.int)
  name <- sprintf("wilson_%d_of_%d", kn[1], kn[2])
  add(name, "low", fmt(ci[1]))
  add(name, "high", fmt(ci[2]))
}
for (bc in list(c(0, 0), c(5, 5), c(1, 0), c(0, 1))) {
  tab <- matrix(c(5, bc[2], bc[1], 5), 2)
  name <- sprintf("mcnemar_b%d_c%d", bc[1], bc[2])
  for (corr in c(TRUE, FALSE)) {
    res <- suppressWarnings(mcnemar.test(tab, correct = corr))
    add(name, if (corr) "statistic_corrected" else "statistic", fmt(unname(res$statistic)))
    add(name, if (corr) "p_corrected" else "p", fmt(res$p.value))
  }
}
write.csv(do.call(rbind, out), "tests/data/degenerate_reference.csv", row.names = FALSE)
cat("R ", R.version$major, ".", R.version$minor, " pROC ", as.character(packageVersion("pROC")), "\n",
    sep = "")
