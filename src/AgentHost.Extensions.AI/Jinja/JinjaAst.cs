namespace AgentHost.Extensions.AI.Jinja;

internal abstract record Node(int Position);

internal sealed record TextNode(string Text, int Position) : Node(Position);
internal sealed record OutputNode(Node Expression, int Position) : Node(Position);
internal sealed record IfNode(Node Test, List<Node> Body, List<Node> Else, int Position) : Node(Position);
internal sealed record ForNode(Node Target, Node Iterable, Node? Filter, List<Node> Body, List<Node> Else, int Position) : Node(Position);
internal sealed record SetNode(Node Target, Node? Value, List<Node>? Body, int Position) : Node(Position);
internal sealed record MacroNode(string Name, List<(string Name, Node? Default)> Parameters, List<Node> Body, int Position) : Node(Position);
internal sealed record CallBlockNode(Node Call, List<(string Name, Node? Default)> CallerParameters, List<Node> Body, int Position) : Node(Position);
internal sealed record FilterBlockNode(Node Filter, List<Node> Body, int Position) : Node(Position);
internal sealed record BreakNode(int Position) : Node(Position);
internal sealed record ContinueNode(int Position) : Node(Position);

internal sealed record LiteralNode(object? Value, int Position) : Node(Position);
internal sealed record ListNode(List<Node> Items, bool IsTuple, int Position) : Node(Position);
internal sealed record DictNode(List<(Node Key, Node Value)> Items, int Position) : Node(Position);
internal sealed record NameNode(string Name, int Position) : Node(Position);
internal sealed record MemberNode(Node Object, Node Property, bool Computed, int Position) : Node(Position);
internal sealed record SliceNode(Node? Start, Node? Stop, Node? Step, int Position) : Node(Position);
internal sealed record CallNode(Node Callee, List<Node> Args, List<(string Name, Node Value)> Kwargs, int Position) : Node(Position);
internal sealed record BinaryNode(string Op, Node Left, Node Right, int Position) : Node(Position);
internal sealed record UnaryNode(string Op, Node Operand, int Position) : Node(Position);
internal sealed record FilterNode(Node Operand, string Name, List<Node> Args, List<(string Name, Node Value)> Kwargs, int Position) : Node(Position);
internal sealed record TestNode(Node Operand, string Name, bool Negate, List<Node> Args, int Position) : Node(Position);
internal sealed record TernaryNode(Node Test, Node Then, Node? Else, int Position) : Node(Position);
