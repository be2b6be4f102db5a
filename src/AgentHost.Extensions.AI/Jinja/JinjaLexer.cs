using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace AgentHost.Extensions.AI.Jinja;

internal enum TokenType
{
    Text, NumericLiteral, StringLiteral, Identifier, Equals, OpenParen, CloseParen, OpenStatement, CloseStatement,
    OpenExpression, CloseExpression, OpenSquareBracket, CloseSquareBracket, OpenCurlyBracket, CloseCurlyBracket,
    Comma, Dot, Colon, Pipe, CallOperator, AdditiveBinaryOperator, MultiplicativeBinaryOperator, ExponentiationBinaryOperator,
    ComparisonBinaryOperator, UnaryOperator, Comment,
}

internal readonly record struct Token(string Value, TokenType Type, int Position);

/// <summary>
/// Splits a template into tokens the way the reference renderer (@huggingface/jinja) does, with trim_blocks and
/// lstrip_blocks on as transformers sets them.
/// </summary>
internal static partial class JinjaLexer
{
    private static readonly (string Seq, TokenType Type)[] Rules =
    [
        ("{%", TokenType.OpenStatement), ("%}", TokenType.CloseStatement), ("{{", TokenType.OpenExpression), ("}}", TokenType.CloseExpression),
        ("(", TokenType.OpenParen), (")", TokenType.CloseParen), ("{", TokenType.OpenCurlyBracket), ("}", TokenType.CloseCurlyBracket),
        ("[", TokenType.OpenSquareBracket), ("]", TokenType.CloseSquareBracket), (",", TokenType.Comma), (".", TokenType.Dot),
        (":", TokenType.Colon), ("|", TokenType.Pipe),
        ("<=", TokenType.ComparisonBinaryOperator), (">=", TokenType.ComparisonBinaryOperator), ("==", TokenType.ComparisonBinaryOperator),
        ("!=", TokenType.ComparisonBinaryOperator), ("<", TokenType.ComparisonBinaryOperator), (">", TokenType.ComparisonBinaryOperator),
        ("+", TokenType.AdditiveBinaryOperator), ("-", TokenType.AdditiveBinaryOperator), ("~", TokenType.AdditiveBinaryOperator),
        ("**", TokenType.ExponentiationBinaryOperator), ("*", TokenType.MultiplicativeBinaryOperator), ("//", TokenType.MultiplicativeBinaryOperator),
        ("/", TokenType.MultiplicativeBinaryOperator), ("%", TokenType.MultiplicativeBinaryOperator), ("=", TokenType.Equals),
    ];

    [GeneratedRegex(@"^[ \t]*({[#%-])", RegexOptions.Multiline)]
    private static partial Regex LstripBlocks();

    [GeneratedRegex(@"([#%-]})\n")]
    private static partial Regex TrimBlocks();

    [GeneratedRegex(@"{%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)", RegexOptions.Singleline)]
    private static partial Regex Generation();

    /// <summary>What the lexer reads after the reference's preprocessing (also what positions refer to).</summary>
    public static string Preprocess(string template)
    {
        if (template.EndsWith('\n'))
            template = template[..^1];
        template = LstripBlocks().Replace(template, "$1");
        template = TrimBlocks().Replace(template, "$1");
        var result = new StringBuilder();
        var last = 0;
        foreach (Match match in Generation().Matches(template))
        {
            var end = match.Index;
            if (match.Groups[1].Length > 0)
            {
                while (end > last && IsWhiteSpace(template[end - 1]))
                    end--;
            }
            result.Append(template, last, end - last);
            if (match.Groups[2].Length == 0)
                result.Append(match.Groups[3].Value);
            last = match.Index + match.Length;
        }
        return result.Append(template, last, template.Length - last).ToString();
    }

    private static bool IsWhiteSpace(char c) => c is ' ' or '\t' or '\n' or '\r' or '\f' or '\v' || JinjaString.IsJsWhiteSpace(c);

    private static bool IsWord(char c) => c == '_' || char.IsAsciiLetterOrDigit(c);

    public static List<Token> Tokenize(string src, Func<int, string, Exception> error)
    {
        var tokens = new List<Token>();
        var length = src.Length;
        var pos = 0;
        var curlyDepth = 0;

        string ConsumeWhile(Func<char, bool> predicate)
        {
            var start = pos;
            while (predicate(src[pos]))
            {
                if (++pos >= length)
                    throw error(pos, "Unexpected end of input");
            }
            return src[start..pos];
        }

        string ConsumeString(char quote)
        {
            var str = new StringBuilder();
            var start = pos;
            while (true)
            {
                if (pos >= length)
                    throw error(pos, "Unexpected end of input in a string");
                var c = src[pos];
                if (c == quote)
                    break;
                pos++;
                if (c != '\\')
                    continue;
                str.Append(src, start, pos - 1 - start);
                if (pos >= length)
                    throw error(pos, "Unexpected end of input in a string");
                var escaped = src[pos++];
                if (escaped is 'x' or 'u')
                {
                    var hexLength = escaped == 'x' ? 2 : 4;
                    if (pos + hexLength > length || !int.TryParse(src.AsSpan(pos, hexLength), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
                        throw error(pos, $"Invalid hexadecimal escape sequence \\{escaped}");
                    str.Append((char)code);
                    pos += hexLength;
                }
                else
                {
                    str.Append(escaped switch
                    {
                        'n' => '\n', 't' => '\t', 'r' => '\r', 'b' => '\b', 'f' => '\f', 'v' => '\v',
                        '\'' => '\'', '"' => '"', '\\' => '\\',
                        _ => throw error(pos - 1, $"Unexpected escaped character: {(escaped == '\n' ? "a line break" : escaped.ToString())}"),
                    });
                }
                start = pos;
            }
            return str.Append(src, start, pos - start).ToString();
        }

        void StripTrailingWhitespace()
        {
            if (tokens.Count > 0 && tokens[^1].Type == TokenType.Text)
            {
                var trimmed = tokens[^1].Value.TrimEnd();
                if (trimmed.Length == 0)
                    tokens.RemoveAt(tokens.Count - 1);
                else
                    tokens[^1] = tokens[^1] with { Value = trimmed };
            }
        }

        void SkipLeadingWhitespace()
        {
            while (pos < length && IsWhiteSpace(src[pos]))
                pos++;
        }

        while (pos < length)
        {
            TokenType? lastType = tokens.Count == 0 ? null : tokens[^1].Type;
            if (lastType is null or TokenType.CloseStatement or TokenType.CloseExpression or TokenType.Comment)
            {
                var end = pos;
                while (true)
                {
                    end = src.IndexOf('{', end);
                    if (end == -1)
                    {
                        end = length;
                        break;
                    }
                    var next = end + 1 < length ? src[end + 1] : '\0';
                    if (next is '%' or '{' or '#')
                        break;
                    end++;
                }
                if (end > pos)
                {
                    tokens.Add(new Token(src[pos..end], TokenType.Text, pos));
                    pos = end;
                    continue;
                }
            }

            if (src[pos] == '{')
            {
                var nextChar = pos + 1 < length ? src[pos + 1] : '\0';
                if (nextChar == '#')
                {
                    var at = pos;
                    pos += 2;
                    var stripBefore = pos < length && src[pos] == '-';
                    if (stripBefore)
                        pos++;
                    var end = src.IndexOf("#}", pos, StringComparison.Ordinal);
                    if (end == -1)
                        throw error(at, "Missing end of comment tag");
                    var comment = src[pos..end];
                    var stripAfter = comment.EndsWith('-');
                    if (stripBefore)
                        StripTrailingWhitespace();
                    tokens.Add(new Token(comment, TokenType.Comment, at));
                    pos = end + 2;
                    if (stripAfter)
                        SkipLeadingWhitespace();
                    continue;
                }
                if (pos + 2 < length && src[pos + 2] == '-')
                {
                    if (nextChar == '%')
                    {
                        StripTrailingWhitespace();
                        tokens.Add(new Token("{%", TokenType.OpenStatement, pos));
                        pos += 3;
                        continue;
                    }
                    if (nextChar == '{')
                    {
                        StripTrailingWhitespace();
                        tokens.Add(new Token("{{", TokenType.OpenExpression, pos));
                        curlyDepth = 0;
                        pos += 3;
                        continue;
                    }
                }
            }

            ConsumeWhile(IsWhiteSpace);
            var ch = src[pos];
            if (ch == '-' && pos + 2 < length && src[pos + 2] == '}')
            {
                var nextChar = src[pos + 1];
                if (nextChar == '%')
                {
                    tokens.Add(new Token("%}", TokenType.CloseStatement, pos));
                    pos += 3;
                    SkipLeadingWhitespace();
                    continue;
                }
                if (nextChar == '}')
                {
                    tokens.Add(new Token("}}", TokenType.CloseExpression, pos));
                    pos += 3;
                    SkipLeadingWhitespace();
                    continue;
                }
            }

            if (ch is '-' or '+')
            {
                if (lastType is null or TokenType.Text)
                    throw error(pos, $"Unexpected character: {ch}");
                if (lastType is not (TokenType.Identifier or TokenType.NumericLiteral or TokenType.StringLiteral or TokenType.CloseParen or TokenType.CloseSquareBracket))
                {
                    var at = pos;
                    pos++;
                    var num = ConsumeWhile(char.IsAsciiDigit);
                    if (num.Length > 0 && pos + 1 < length && src[pos] == '.' && char.IsAsciiDigit(src[pos + 1]))
                    {
                        pos++;
                        num = $"{num}.{ConsumeWhile(char.IsAsciiDigit)}";
                    }
                    tokens.Add(new Token(ch + num, num.Length > 0 ? TokenType.NumericLiteral : TokenType.UnaryOperator, at));
                    continue;
                }
            }

            var matched = false;
            foreach (var (seq, type) in Rules)
            {
                if (seq == "}}" && curlyDepth > 0)
                    continue;
                if (string.CompareOrdinal(src, pos, seq, 0, seq.Length) == 0)
                {
                    tokens.Add(new Token(seq, type, pos));
                    if (type == TokenType.OpenExpression)
                        curlyDepth = 0;
                    else if (type == TokenType.OpenCurlyBracket)
                        curlyDepth++;
                    else if (type == TokenType.CloseCurlyBracket)
                        curlyDepth--;
                    pos += seq.Length;
                    matched = true;
                    break;
                }
            }
            if (matched)
                continue;

            if (ch is '\'' or '"')
            {
                var at = pos;
                pos++;
                var str = ConsumeString(ch);
                tokens.Add(new Token(str, TokenType.StringLiteral, at));
                pos++;
                continue;
            }
            if (char.IsAsciiDigit(ch))
            {
                var at = pos;
                var num = ConsumeWhile(char.IsAsciiDigit);
                if (lastType != TokenType.Dot && pos + 1 < length && src[pos] == '.' && char.IsAsciiDigit(src[pos + 1]))
                {
                    pos++;
                    num = $"{num}.{ConsumeWhile(char.IsAsciiDigit)}";
                }
                tokens.Add(new Token(num, TokenType.NumericLiteral, at));
                continue;
            }
            if (IsWord(ch))
            {
                var at = pos;
                tokens.Add(new Token(ConsumeWhile(IsWord), TokenType.Identifier, at));
                continue;
            }
            throw error(pos, $"Unexpected character: {ch}");
        }
        return tokens;
    }
}
