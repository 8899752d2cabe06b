import Foundation

/// FLOPs per row of each scoring method, estimated from the model's size, and what a second target on the
/// same pool costs (what each method reuses). Wall times are measured (``ResourceMeter``); these are the
/// hardware-free counterpart.
///
/// Convention (Kaplan et al. 2020): a forward pass costs 2·N·T FLOPs for N parameters and T tokens, a
/// forward + backward 6·N·T; attention's T² term and the embedding lookup are left out (small at these
/// contexts). T is the pool's mean row length in tokens, capped at the surrogate's context.
enum CostModel {
    static func annotate(_ costs: [EvaluationReport.Cost], surrogate N: Int, context: Int, meanTokens T: Double, uSize: Int, zvalRows: Int,
                         epochs L: Int, lessDimensions d: Int, scoredRows: Int,
                         bootstrapPretrainTokens: [String: Double] = [:]) -> [EvaluationReport.Cost] {
        let n = Double(N), rows = Double(max(scoredRows, 1))
        let forward = 2 * n * T, step = 6 * n * T
        // θ_bas: L epochs over U; θ_val (Method A): L copies each trained one epoch on Z_val.
        let basTraining = Double(L * uSize) * step, valTraining = Double(L * zvalRows) * step
        return costs.map { cost in
            var c = cost
            switch cost.method {
            // "ToV" for the run's first θ0, "ToV (<θ0> θ0)" for the others.
            case let method where method == "ToV" || method.hasPrefix("ToV ("):
                // Per scored row: L losses under θ_bas and L under θ_val; the trajectories spread over the rows.
                c.flopsPerRow = 2 * Double(L) * forward + (basTraining + valTraining) / rows
                // A bootstrap θ0 is pretrained first (at most its steps' batch tokens, forward + backward).
                c.flopsPerRow! += 6 * n * (bootstrapPretrainTokens[method] ?? 0) / rows
                // Same U and θ0: θ_bas and its L stored losses per row are reused; the θ_val models and their
                // L forward passes per row are new (the daemon rescans the pool on each refresh as well).
                c.secondTargetFlopsPerRow = Double(L) * forward + valTraining / rows
                c.reuse = "θ_bas and its stored losses (same U, θ0); a new target trains L θ_val models on its Z_val and runs L forward passes per row"
            // "ToV cross-fitted, K folds" (and " (<θ0> θ0)" after it for the other θ0s).
            case let method where method.hasPrefix("ToV cross-fitted, "):
                let folds = Double(method.dropFirst("ToV cross-fitted, ".count).prefix { $0.isNumber }) ?? 2
                // Per row: a forward pass under each fold's fitted model and its nudged one; θ_bas as plain
                // ToV's, and per fold a pass over the other folds at η and one over the fold at ε.
                let foldTraining = folds * Double(zvalRows) * step
                // A bootstrap θ0's tokens are keyed "ToV (<θ0> θ0)"; this method's name ends in the same " (<θ0> θ0)".
                let theta0Tokens = bootstrapPretrainTokens.first { method.hasSuffix($0.key.dropFirst("ToV".count)) }?.value ?? 0
                c.flopsPerRow = 2 * folds * forward + (basTraining + foldTraining + 6 * n * theta0Tokens) / rows
                c.secondTargetFlopsPerRow = 2 * folds * forward + foldTraining / rows
                c.reuse = "θ_bas (same U, θ0); a new target trains its folds' models on its Z_val and runs 2 forward passes per fold and row"
            case "LESS (Adam)":
                // One forward + backward per row, the Adam preconditioning (~4 FLOPs/parameter), the count
                // sketch (one add per parameter), then the dot product (2d) with
                // the mean of the normalised Z_val features.
                c.flopsPerRow = step + 5 * n + 2 * Double(d) + (basTraining + Double(zvalRows) * (step + n)) / rows
                c.secondTargetFlopsPerRow = 2 * Double(d) + Double(zvalRows) * (step + n) / rows
                c.reuse = "the projected gradient store of the pool (kept, as LESS keeps it); a new target needs only its Z_val gradients and one \(d)-dim dot product per row"
            case "LESS-like":
                // One AdamW step per row: forward + backward + update (~10 FLOPs/parameter) + sketch.
                c.flopsPerRow = step + 11 * n + 2 * Double(d) + (basTraining + Double(zvalRows) * (step + 11 * n)) / rows
                c.secondTargetFlopsPerRow = 2 * Double(d) + Double(zvalRows) * (step + 11 * n) / rows
                c.reuse = "the pool's projected features; a new target needs its Z_val features and one dot product per row"
            case "DSIR":
                // Model-free: hashing the row's n-grams (not FLOPs) and one multiply-add per n-gram.
                c.flopsPerRow = 2 * 2 * T
                c.secondTargetFlopsPerRow = 2 * 2 * T
                c.reuse = "the pool's hashed n-gram counts and bag-of-ngrams model; a new target fits its own (Z_val) and re-weights each row (no model)"
            case "random (length-matched)":
                c.flopsPerRow = 0
                c.secondTargetFlopsPerRow = 0
                c.reuse = "needs only the rows' response lengths"
            default:
                break
            }
            return c
        }
    }
}
