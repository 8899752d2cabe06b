import Testing

@Test func placeholderEvaluationTests() {}
