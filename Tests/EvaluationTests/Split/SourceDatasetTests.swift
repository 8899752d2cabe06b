import Testing
@testable import Evaluation

/// Every subtask of BIG-bench 1.0.0 natural_instructions (the 61 directory names of the sdist) and the
/// source dataset it was built from: what "held out by dataset" excludes.
@Suite struct SourceDatasetTests {
    static let subtasks: [(String, String)] = [
        ("subtask001_quoref_question_generation", "quoref"), ("subtask002_quoref_answer_generation", "quoref"),
        ("subtask003_mctaco_question_generation_event_duration", "mctaco"), ("subtask004_mctaco_answer_generation_event_duration", "mctaco"),
        ("subtask005_mctaco_wrong_answer_generation_event_duration", "mctaco"), ("subtask006_mctaco_question_generation_transient_stationary", "mctaco"),
        ("subtask007_mctaco_answer_generation_transient_stationary", "mctaco"), ("subtask008_mctaco_wrong_answer_generation_transient_stationary", "mctaco"),
        ("subtask009_mctaco_question_generation_event_ordering", "mctaco"), ("subtask010_mctaco_answer_generation_event_ordering", "mctaco"),
        ("subtask011_mctaco_wrong_answer_generation_event_ordering", "mctaco"), ("subtask012_mctaco_question_generation_absolute_timepoint", "mctaco"),
        ("subtask013_mctaco_answer_generation_absolute_timepoint", "mctaco"), ("subtask014_mctaco_wrong_answer_generation_absolute_timepoint", "mctaco"),
        ("subtask015_mctaco_question_generation_frequency", "mctaco"), ("subtask016_mctaco_answer_generation_frequency", "mctaco"),
        ("subtask017_mctaco_wrong_answer_generation_frequency", "mctaco"), ("subtask018_mctaco_temporal_reasoning_presence", "mctaco"),
        ("subtask019_mctaco_temporal_reasoning_category", "mctaco"), ("subtask020_mctaco_span_based_question", "mctaco"),
        ("subtask021_mctaco_grammatical_logical", "mctaco"), ("subtask022_cosmosqa_passage_inappropriate_binary", "cosmosqa"),
        ("subtask023_cosmosqa_question_generation", "cosmosqa"), ("subtask024_cosmosqa_answer_generation", "cosmosqa"),
        ("subtask025_cosmosqa_incorrect_answer_generation", "cosmosqa"), ("subtask026_drop_question_generation", "drop"),
        ("subtask027_drop_answer_type_generation", "drop"), ("subtask028_drop_answer_generation", "drop"),
        ("subtask029_winogrande_full_object", "winogrande"), ("subtask030_winogrande_full_person", "winogrande"),
        ("subtask031_winogrande_question_generation_object", "winogrande"), ("subtask032_winogrande_question_generation_person", "winogrande"),
        ("subtask033_winogrande_answer_generation", "winogrande"), ("subtask034_winogrande_question_modification_object", "winogrande"),
        ("subtask035_winogrande_question_modification_person", "winogrande"), ("subtask036_qasc_topic_word_to_generate_related_fact", "qasc"),
        ("subtask037_qasc_generate_related_fact", "qasc"), ("subtask038_qasc_combined_fact", "qasc"),
        ("subtask039_qasc_find_overlapping_words", "qasc"), ("subtask040_qasc_question_generation", "qasc"),
        ("subtask041_qasc_answer_generation", "qasc"), ("subtask042_qasc_incorrect_option_generation", "qasc"),
        ("subtask043_essential_terms_answering_incomplete_questions", "essential_terms"), ("subtask044_essential_terms_identifying_essential_words", "essential_terms"),
        ("subtask045_miscellaneous_sentence_paraphrasing", "misc"), ("subtask046_miscellaenous_question_typing", "misc"),
        ("subtask047_misc_answering_science_questions", "misc"), ("subtask048_multirc_question_generation", "multirc"),
        ("subtask049_multirc_questions_needed_to_answer", "multirc"), ("subtask050_multirc_answerability", "multirc"),
        ("subtask051_multirc_correct_answer_single_sentence", "multirc"), ("subtask052_multirc_identify_bad_question", "multirc"),
        ("subtask053_multirc_correct_bad_question", "multirc"), ("subtask054_multirc_write_correct_answer", "multirc"),
        ("subtask055_multirc_write_incorrect_answer", "multirc"), ("subtask056_multirc_classify_correct_answer", "multirc"),
        ("subtask057_multirc_classify_incorrect_answer", "multirc"), ("subtask058_multirc_question_answering", "multirc"),
        ("subtask059_ropes_story_generation", "ropes"), ("subtask060_ropes_question_generation", "ropes"),
        ("subtask061_ropes_answer_generation", "ropes"),
    ]

    @Test func all61SubtasksMapToTheirDataset() {
        #expect(Self.subtasks.count == BigBenchNIConverter.subtaskCount)
        for (name, dataset) in Self.subtasks {
            #expect(BigBenchNIConverter.dataset(ofSubtask: name) == dataset, "\(name)")
        }
        // docs/data.md's table: subtasks per dataset.
        var counts: [String: Int] = [:]
        for (name, _) in Self.subtasks { counts[BigBenchNIConverter.dataset(ofSubtask: name), default: 0] += 1 }
        #expect(counts == ["quoref": 2, "mctaco": 19, "cosmosqa": 4, "drop": 3, "winogrande": 7, "qasc": 7,
                           "essential_terms": 2, "misc": 3, "multirc": 11, "ropes": 3])
    }

    /// The three dev targets are of three different datasets (none a sibling of another).
    @Test func theDevTargetsAreNotSiblings() {
        let dev = ["subtask061_ropes_answer_generation", "subtask028_drop_answer_generation", "subtask024_cosmosqa_answer_generation"]
        #expect(Set(dev.map(BigBenchNIConverter.dataset(ofSubtask:))).count == 3)
    }
}
