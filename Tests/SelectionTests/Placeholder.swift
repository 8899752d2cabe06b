import Testing

@Test func placeholderSelectionTests() {}
