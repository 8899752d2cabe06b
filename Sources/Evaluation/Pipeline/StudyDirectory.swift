import Foundation

/// The output directory of a resumable study that runs seed by seed (`SharedScoringCheck`,
/// `ZvalSignalStudy`): each seed's record in its own file as soon as it exists, what shaped them in an
/// options file, and the report. A rerun with the same shaping resumes from the seeds on disk; other
/// shaping is refused rather than mixed in.
struct StudyDirectory<Record: Codable> {
    let directory: String
    /// Seed files are `<name>-seed<N>.json`, the report `<name>.json`.
    let name: String
    /// What shaped the records, e.g. `shared-options.json`.
    let optionsFile: String

    /// Creates the directory and records `shaping`, or checks it against the one recorded.
    func claim(shaping: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + optionsFile
        if let data = FileManager.default.contents(atPath: path), let recorded = try? JSONDecoder().decode([String: String].self, from: data) {
            let differing = Set(recorded.keys).union(shaping.keys).filter { recorded[$0] != shaping[$0] }.sorted()
            guard differing.isEmpty else {
                throw EvaluationError("\(directory) holds a \(name) of other settings (\(differing.joined(separator: ", "))): use another --output, or delete it to start over")
            }
            return
        }
        try Self.prettyJSON(shaping).write(to: URL(fileURLWithPath: path))
    }

    func seedPath(_ seed: Int) -> String { directory + "/\(name)-seed\(seed).json" }

    func load(seed: Int) -> Record? {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return FileManager.default.contents(atPath: seedPath(seed)).flatMap { try? decoder.decode(Record.self, from: $0) }
    }

    func save(_ record: Record, seed: Int) throws {
        try Self.encoder(pretty: false).encode(record).write(to: URL(fileURLWithPath: seedPath(seed)), options: .atomic)
    }

    /// Writes the report as `<name>.json`, the one committed format.
    func write<Report: Encodable>(report: Report) throws {
        try Self.prettyJSON(report).write(to: URL(fileURLWithPath: directory + "/\(name).json"))
    }

    static func prettyJSON<T: Encodable>(_ value: T) throws -> Data { try encoder(pretty: true).encode(value) }

    /// NaN (a statistic of a degenerate case, an interval of no values) is written "nan", as the
    /// evaluation report writes it.
    static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        if pretty { encoder.outputFormatting = [.prettyPrinted, .sortedKeys] }
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }
}
