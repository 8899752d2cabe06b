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
