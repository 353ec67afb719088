-- report_probe_classes: classes whose probe accuracy fell significantly against raw (uim probe's probe_classes).
SELECT policy, label, n_eval, n_train_raw, n_train, raw_accuracy, accuracy, ci_lo, ci_hi, delta, q_value, is_tail10
FROM probe_classes
WHERE hurt
ORDER BY policy, delta, label;
