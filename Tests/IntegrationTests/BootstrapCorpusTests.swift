@testable import Daemon
import Foundation
import PQ
import Surrogate
import Testing
import TovTesting

/// U as the trainer reads it for θ0's pretraining: each row's source comes along (NULL stays nil),
/// so the de-duplicated corpus can cut the instruction a source repeats in every row.
@Suite("Bootstrap corpus from the database", .serialized)
struct BootstrapCorpusTests {
    @Test func uCarriesEachRowsSourceAndTheCorpusKeepsItsInstructionOnce() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let instruction = "Definition: answer the question about the passage in one word."
            try await c.execute("""
                INSERT INTO tov.candidates (prompt, response, source)
                SELECT $1 || ' Question ' || g || '?', 'answer ' || g, CASE WHEN g <= 6 THEN 'quiz' END
                FROM generate_series(1, 8) g
                """, [instruction])
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (8, 1, '{}', 'training');
                INSERT INTO tov.base_subset (base_version, candidate_id) SELECT 1, id FROM tov.candidates;
                """)
            let u = try await TrainingStore.baseSubsetTexts(1, on: c)
            #expect(u.map(\.source) == Array(repeating: "quiz", count: 6) + [nil, nil])
            #expect(u.map { String(decoding: $0.response, as: UTF8.self) } == (1...8).map { "answer \($0)" })

            let tokenizer = Tokenizer.train(sample: u.map { $0.prompt + [0x0A] + $0.response }, vocabSize: 300)
            var settings = Settings()
            settings.pretrainSteps = 1
            let documents = BaseModelConfig(settings: settings).bootstrapPretraining
                .documents(u.map { ($0.source, $0.prompt, $0.response) }, tokenizer: tokenizer, context: 256)
            let text = documents.map { String(decoding: tokenizer.decode($0.response), as: UTF8.self) }.joined(separator: "\n")
            // The instruction runs into the question on the same line, so only a source's common prefix
            // removes it: kept once for the six "quiz" rows, and once for the two rows without a source
            // (one group of their own, whose common prefix is that instruction too).
            #expect(text.components(separatedBy: instruction).count - 1 == 2)
            // Each question's own part and each response stay ("Question " is part of the common prefix).
            for g in 1...8 { #expect(text.contains("\(g)?\nanswer \(g)")) }
        }
    }
}
