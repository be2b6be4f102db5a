namespace AgentHost.Extensions.AI.Chat;

/// <summary>A piece of a rendered prompt: either the format's own markup or text that came from the conversation.</summary>
/// <param name="Text">The text of the piece.</param>
/// <param name="IsMarkup">
/// True for the format's control markup (role headers, turn ends, tool tags), whose control-token texts become
/// control tokens; false for message content, tool definitions and results, which are always tokenized as plain
/// text so that no one can inject a turn end or a role.
/// </param>
public readonly record struct PromptSegment(string Text, bool IsMarkup);
