// A whole program (top-level statements): the block's statements are the body of an async method.
internal static class __NAME__
{
    public static async Task RunAsync()
    {
/*SNIPPET*/
    }
}
