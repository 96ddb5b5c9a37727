# Reference values for mskdx.evaluate.stats.{clustered,clustered_binary,multiplicity} (issue 37).
# Run from the repository root:  Rscript tests/data/clustered_reference.R   (a few seconds)
# Writes tests/data/clustered_input.csv (simulated here, seeded) and
#        tests/data/clustered_reference.csv (dataset, check, arm, arm_b, quantity, value).
# Made with R 4.2.2, boot 1.3-28.1, survey 4.1-1, pROC 1.18.0 (Debian bookworm packages).
#
# Data "clustered": 60 patients with 2 to 8 images; 40% of the patients have only negative
# images, 30% only positive ones, 30% both. Three arms: a shared patient effect, an arm-specific
# patient effect and image noise, scores rounded to 2 decimals (ties within and across classes).
# Data "single": 80 patients with one image each, two arms.
#
# Checks (none runs mskdx code):
#  obuchowski_brute: Obuchowski (1997) variance, covariance, paired z and the global chi-square
#    test of 3 equal AUCs, written from the paper's formulas with all M x N comparisons (outer),
#    an algorithm independent of mskdx's midranks.
#  bootstrap: SE of one AUC and of a difference of two AUCs by resampling patients (boot,
#    R = 4000, ordinary nonparametric bootstrap of patients, all their images kept).
#  survey: ACC, SEN, SPE per arm as svymean under svydesign(ids = ~patient) with
#    deff = "replace"; the SEN/SPE designs are built from the positive/negative images only; the
#    Wilson interval on n / max(1, deff) written out from Wilson's closed form.
#  durkalski: the clustered McNemar statistic of Durkalski et al. (2003), per-patient sums by
#    tapply, on ACC, SEN and SPE of arms A vs B.
#  holm: p.adjust(p, "holm") on vectors with NA.
#  proc (data "single"): pROC ci.auc(method = "delong"), var(), roc.test(paired, delong) and
#    mcnemar.test(correct = FALSE), prop.test(correct = FALSE) for the Wilson interval.
suppressPackageStartupMessages({
  library(boot)
  library(survey)
  library(pROC)
})
set.seed(20261207)
out <- list()
add <- function(dataset, check, arm, arm_b, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(
    dataset = dataset, check = check, arm = arm, arm_b = arm_b,
    quantity = quantity, value = as.numeric(value)
  )
}

# ---- data -----------------------------------------------------------------------------------
simulate <- function(n_pat, sizes, arms, name) {
  rows <- list()
  kind <- sample(c("neg", "pos", "mixed"), n_pat, replace = TRUE, prob = c(0.4, 0.3, 0.3))
  for (i in seq_len(n_pat)) {
    m <- if (length(sizes) == 1) sizes else sample(sizes, 1)
    lab <- switch(kind[i], neg = rep(0, m), pos = rep(1, m), mixed = rbinom(m, 1, 0.5))
    u <- rnorm(1, 0, 1.2)
    for (a in arms) {
      v <- rnorm(1, 0, 0.7)
      s <- plogis(1.3 * lab + u + v + rnorm(m, 0, 0.8) - 0.6)
      rows[[length(rows) + 1]] <- data.frame(
        dataset = name, patient = sprintf("P-%03d", i), image = sprintf("I-%03d-%d", i, seq_len(m)),
        label = lab, arm = a, prob = round(s, 2)
      )
    }
  }
  do.call(rbind, rows)
}
clus <- simulate(60, 2:8, c("A", "B", "C"), "clustered")
single <- simulate(80, 1, c("A", "B"), "single")
single$label[single$patient == "P-001"] <- 1  # both classes surely present
single$label[single$patient == "P-002"] <- 0
input <- rbind(clus, single)
write.csv(input, "tests/data/clustered_input.csv", row.names = FALSE, quote = FALSE)

wide <- function(d) {
  w <- reshape(d[, c("patient", "image", "label", "arm", "prob")], idvar = c("patient", "image", "label"),
               timevar = "arm", direction = "wide")
  names(w) <- sub("^prob\\.", "", names(w))
  w
}
cw <- wide(clus)
threshold <- 0.5

# ---- Obuchowski (1997) from its formulas, all pairs ------------------------------------------
obuchowski <- function(w, arms) {
  pos <- w[w$label == 1, ]
  neg <- w[w$label == 0, ]
  M <- nrow(pos); N <- nrow(neg)
  pats <- unique(w$patient)
  I <- length(pats)
  I10 <- length(unique(pos$patient)); I01 <- length(unique(neg$patient))
  m_i <- sapply(pats, function(p) sum(pos$patient == p))
  n_i <- sapply(pats, function(p) sum(neg$patient == p))
  theta <- c(); r10 <- list(); r01 <- list()
  for (a in arms) {
    psi <- outer(pos[[a]], neg[[a]], function(x, y) (x > y) + 0.5 * (x == y))
    v10 <- rowSums(psi) / N; v01 <- colSums(psi) / M
    th <- sum(psi) / (M * N)
    theta[a] <- th
    r10[[a]] <- sapply(pats, function(p) sum(v10[pos$patient == p])) - m_i * th
    r01[[a]] <- sapply(pats, function(p) sum(v01[neg$patient == p])) - n_i * th
  }
  k <- length(arms)
  S <- matrix(0, k, k, dimnames = list(arms, arms))
  for (a in arms) for (b in arms) {
    s10 <- I10 / ((I10 - 1) * M) * sum(r10[[a]] * r10[[b]])
    s01 <- I01 / ((I01 - 1) * N) * sum(r01[[a]] * r01[[b]])
    s11 <- I / (I - 1) * sum(r10[[a]] * r01[[b]] + r10[[b]] * r01[[a]]) / 2
    S[a, b] <- s10 / M + s01 / N + 2 * s11 / (M * N)
  }
  list(theta = theta, S = S)
}
ob <- obuchowski(cw, c("A", "B", "C"))
for (a in c("A", "B", "C")) {
  add("clustered", "obuchowski_brute", a, "", "auc", ob$theta[a])
  add("clustered", "obuchowski_brute", a, "", "variance", ob$S[a, a])
}
for (pr in list(c("A", "B"), c("A", "C"), c("B", "C"))) {
  a <- pr[1]; b <- pr[2]
  v <- ob$S[a, a] + ob$S[b, b] - 2 * ob$S[a, b]
  z <- (ob$theta[a] - ob$theta[b]) / sqrt(v)
  add("clustered", "obuchowski_brute", a, b, "covariance", ob$S[a, b])
  add("clustered", "obuchowski_brute", a, b, "z", z)
  add("clustered", "obuchowski_brute", a, b, "p", 2 * pnorm(-abs(z)))
}
L <- cbind(diag(2), -1)
d <- L %*% ob$theta
chisq <- as.numeric(t(d) %*% solve(L %*% ob$S %*% t(L)) %*% d)
add("clustered", "obuchowski_brute", "A+B+C", "", "global_chi2", chisq)
add("clustered", "obuchowski_brute", "A+B+C", "", "global_p", pchisq(chisq, 2, lower.tail = FALSE))

# ---- patient bootstrap (boot) ---------------------------------------------------------------
auc_mw <- function(s, y) {
  m <- sum(y == 1); n <- sum(y == 0)
  (sum(rank(s)[y == 1]) - m * (m + 1) / 2) / (m * n)
}
by_patient <- split(cw, cw$patient)
boot_stat <- function(ids, idx) {
  d <- do.call(rbind, by_patient[idx])
  a <- auc_mw(d$A, d$label); b <- auc_mw(d$B, d$label)
  c(a, a - b)
}
bt <- boot(seq_along(by_patient), boot_stat, R = 4000)
add("clustered", "bootstrap", "A", "", "auc_se", sd(bt$t[, 1]))
add("clustered", "bootstrap", "A", "B", "difference_se", sd(bt$t[, 2]))
add("clustered", "bootstrap", "A", "", "replicates", 4000)

# ---- survey: clustered proportions ----------------------------------------------------------
z975 <- qnorm(0.975)
wilson <- function(p, n) {
  c0 <- (p + z975^2 / (2 * n)) / (1 + z975^2 / n)
  h <- z975 * sqrt(p * (1 - p) / n + z975^2 / (4 * n^2)) / (1 + z975^2 / n)
  c(max(0, c0 - h), min(1, c0 + h))
}
for (a in c("A", "B", "C")) {
  cw$correct <- as.numeric((cw[[a]] >= threshold) == (cw$label == 1))
  for (metric in c("acc", "sen", "spe")) {
    d <- switch(metric, acc = cw, sen = cw[cw$label == 1, ], spe = cw[cw$label == 0, ])
    d$w <- 1
    des <- svydesign(ids = ~patient, weights = ~w, data = d)
    est <- svymean(~correct, des, deff = "replace")
    p <- as.numeric(coef(est)); deff <- as.numeric(deff(est))
    ci <- wilson(p, nrow(d) / max(1, deff))
    add("clustered", "survey", a, "", paste0(metric, "_value"), p)
    add("clustered", "survey", a, "", paste0(metric, "_se"), SE(est))
    add("clustered", "survey", a, "", paste0(metric, "_deff"), deff)
    add("clustered", "survey", a, "", paste0(metric, "_low"), ci[1])
    add("clustered", "survey", a, "", paste0(metric, "_high"), ci[2])
  }
}

# ---- Durkalski et al. (2003) ----------------------------------------------------------------
durkalski <- function(ok_a, ok_b, patient) {
  bk <- tapply(ok_a & !ok_b, patient, sum)
  ck <- tapply(!ok_a & ok_b, patient, sum)
  stat <- (sum(bk) - sum(ck))^2 / sum((bk - ck)^2)
  c(stat, pchisq(stat, 1, lower.tail = FALSE))
}
ok_a <- (cw$A >= threshold) == (cw$label == 1)
ok_b <- (cw$B >= threshold) == (cw$label == 1)
for (metric in c("acc", "sen", "spe")) {
  keep <- switch(metric, acc = rep(TRUE, nrow(cw)), sen = cw$label == 1, spe = cw$label == 0)
  r <- durkalski(ok_a[keep], ok_b[keep], cw$patient[keep])
  add("clustered", "durkalski", "A", "B", paste0(metric, "_statistic"), r[1])
  add("clustered", "durkalski", "A", "B", paste0(metric, "_p"), r[2])
}

# ---- Holm -----------------------------------------------------------------------------------
holm_in <- list(
  v1 = c(0.01, 0.04, 0.03, 0.2),
  v2 = c(0.04, NA, 0.001, 0.04, 0.5, NA),
  v3 = c(0.3, 0.3, 0.3),
  v4 = c(1e-8, 0.9, 0.012, 0.013, 0.011, 0.05)
)
for (name in names(holm_in)) {
  p <- holm_in[[name]]
  q <- p.adjust(p, "holm")
  for (i in seq_along(p)) {
    add("holm", "p.adjust", name, as.character(i), "p", p[i])
    add("holm", "p.adjust", name, as.character(i), "holm", q[i])
  }
}

# ---- pROC and friends on one image per patient ----------------------------------------------
sw <- wide(single)
ra <- roc(sw$label, sw$A, levels = c(0, 1), direction = "<", quiet = TRUE)
rb <- roc(sw$label, sw$B, levels = c(0, 1), direction = "<", quiet = TRUE)
for (nm in c("A", "B")) {
  r <- if (nm == "A") ra else rb
  ci <- ci.auc(r, method = "delong")
  add("single", "proc", nm, "", "auc", ci[2])
  add("single", "proc", nm, "", "ci_low", ci[1])
  add("single", "proc", nm, "", "ci_high", ci[3])
  add("single", "proc", nm, "", "variance", var(r))
}
rt <- roc.test(ra, rb, method = "delong", paired = TRUE)
add("single", "proc", "A", "B", "z", rt$statistic)
add("single", "proc", "A", "B", "p", rt$p.value)
ok_a <- (sw$A >= threshold) == (sw$label == 1)
ok_b <- (sw$B >= threshold) == (sw$label == 1)
mc <- mcnemar.test(table(factor(ok_a, c(FALSE, TRUE)), factor(ok_b, c(FALSE, TRUE))), correct = FALSE)
add("single", "mcnemar", "A", "B", "acc_statistic", mc$statistic)
add("single", "mcnemar", "A", "B", "acc_p", mc$p.value)
pt <- prop.test(sum(ok_a), length(ok_a), correct = FALSE)
add("single", "wilson", "A", "", "acc_low", pt$conf.int[1])
add("single", "wilson", "A", "", "acc_high", pt$conf.int[2])

res <- do.call(rbind, out)
write.csv(res, "tests/data/clustered_reference.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("wrote %d reference values\n", nrow(res)))
