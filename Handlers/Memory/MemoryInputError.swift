/// A bad memory request: says what is wrong; nothing was written.
struct MemoryInputError: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ description: String) { self.description = description }
}
