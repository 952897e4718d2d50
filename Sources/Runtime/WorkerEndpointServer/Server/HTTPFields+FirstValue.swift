import HTTPTypes

extension HTTPFields {
    /// The first value of the field `name`, or nil. `fields[name]` joins every value of the name
    /// through a generic lazy sequence (about a microsecond a lookup, a visible share of a
    /// `/runsync`); request paths only ever need the first.
    package func firstValue(_ name: HTTPField.Name) -> String? {
        for field in self where field.name == name { return field.value }
        return nil
    }
}
