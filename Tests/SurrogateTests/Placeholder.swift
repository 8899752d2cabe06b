import Testing

@Test func placeholderSurrogateTests() {}
