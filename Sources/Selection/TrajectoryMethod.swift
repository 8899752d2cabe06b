/// How the post-validation trajectory θ_val is built (DESIGN.md §4).
///
/// - Method A: θ_bas^l = θ_bas^{l-1} + one epoch on U (LR η); θ_val^l = θ_bas^l + one pass on Z_val (LR ε).
///   θ_val^l forks from the base trajectory at every epoch, so a Z_val change retrains only the L
///   cheap passes on Z_val and every ℓ(θ_bas^l, x) stays valid.
/// - Method B: θ_val^l = θ_val^{l-1} + one epoch on U, then one pass on Z_val: the val trajectory
///   keeps its own weights, so a refresh retrains L epochs on U as well.
public enum TrajectoryMethod: String, Codable, CaseIterable, Sendable {
    case A
    case B
}

/// One step of a trajectory plan, executed in order by a trainer.
public enum TrajectoryStep: Equatable, Sendable {
    /// θ_bas^epoch = θ_bas^{epoch-1} + one epoch on U.
    case trainBase(epoch: Int)
    /// θ_val^epoch starts as a copy of θ_bas^epoch (Method A).
    case forkVal(epoch: Int)
    /// θ_val^epoch = θ_val^{epoch-1} + one epoch on U (Method B).
    case trainValOnU(epoch: Int)
    /// θ_val^epoch += one pass on Z_val at LR ε.
    case trainValOnZval(epoch: Int)
    /// Both checkpoints of this epoch are final: score with them.
    case scoreCheckpoint(epoch: Int)
}

/// The ordered steps that produce θ_bas^1..L and θ_val^1..L for a method.
public struct TrajectoryPlan: Equatable, Sendable {
    public var method: TrajectoryMethod
    public var epochs: Int
    public var steps: [TrajectoryStep]

    public init(method: TrajectoryMethod, epochs: Int) {
        precondition(epochs >= 1, "at least one scoring epoch")
        self.method = method
        self.epochs = epochs
        var steps: [TrajectoryStep] = []
        for l in 1...epochs {
            steps.append(.trainBase(epoch: l))
            switch method {
            case .A: steps.append(.forkVal(epoch: l))
            case .B: steps.append(.trainValOnU(epoch: l))
            }
            steps.append(.trainValOnZval(epoch: l))
            steps.append(.scoreCheckpoint(epoch: l))
        }
        self.steps = steps
    }
}
