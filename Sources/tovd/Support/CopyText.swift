/// PostgreSQL COPY text format: escaping for COPY FROM, unescaping for COPY TO.
enum CopyText {
    /// Appends `bytes` as one column value: backslash, tab, newline and carriage return are escaped.
    static func appendEscaped(_ bytes: some Sequence<UInt8>, to out: inout [UInt8]) {
        for b in bytes {
            switch b {
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            default: out.append(b)
            }
        }
    }

    /// The COPY text null marker.
    static let null: [UInt8] = [0x5C, UInt8(ascii: "N")]

    /// Appends one row for `TransferQueries.candidatesCopyIn` / `validationCopyIn` without source or
    /// meta (the benches' rows).
    static func appendRow(prompt: some Sequence<UInt8>, response: some Sequence<UInt8>, to out: inout [UInt8]) {
        appendEscaped(prompt, to: &out)
        out.append(0x09)
        appendEscaped(response, to: &out)
        for _ in 0..<2 {
            out.append(0x09)
            out.append(contentsOf: null)
        }
        out.append(0x0A)
    }

    /// Reverses the escaping of one or more COPY text rows of a single column.
    static func unescape(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x5C, i + 1 < bytes.count {
                let next = bytes[i + 1]
                switch next {
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "v"): out.append(0x0B)
                default: out.append(next)
                }
                i += 2
            } else {
                out.append(b)
                i += 1
            }
        }
        return out
    }
}
