using System.Diagnostics;
using System.Net.Http;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>
/// A real headless Chromium driven over the DevTools protocol: loads a page and evaluates JavaScript in it, so tests
/// can ask the browser what it laid out (element boxes, text) rather than trusting the HTML source.
/// </summary>
public sealed partial class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _profileDirectory;
    private readonly ClientWebSocket _socket = new();
    private int _nextId;

    private HeadlessChromium(Process process, string profileDirectory)
    {
        _process = process;
        _profileDirectory = profileDirectory;
    }

    public static string? Executable => new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    /// <summary>Opens <paramref name="url"/> in a window <paramref name="width"/> CSS pixels wide (1280: a laptop's screen).</summary>
    public static async Task<HeadlessChromium> OpenAsync(string url, int width = 1280, int height = 900)
    {
        var executable = Executable ?? throw new InvalidOperationException("Chromium is not installed (scripts/test.sh installs the Debian package chromium)");
        var profile = TestEnvironment.NewTemporaryDirectory();
        var start = new ProcessStartInfo(executable) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0", $"--user-data-dir={profile}", $"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1", "about:blank" })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        var browser = new HeadlessChromium(process, profile);
        try
        {
            var endpoint = await ReadEndpointAsync(process).ConfigureAwait(false);
            using var http = new HttpClient();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            string? pageSocket = null;
            while (pageSocket is null && DateTime.UtcNow < deadline)
            {
                using var targets = JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://{endpoint}/json/list")).ConfigureAwait(false));
                pageSocket = targets.RootElement.EnumerateArray()
                    .Where(t => t.GetProperty("type").GetString() == "page")
                    .Select(t => t.GetProperty("webSocketDebuggerUrl").GetString())
                    .FirstOrDefault();
                if (pageSocket is null)
                {
                    await Task.Delay(100).ConfigureAwait(false);
                }
            }

            await browser._socket.ConnectAsync(new Uri(pageSocket ?? throw new TimeoutException("Chromium opened no page")), CancellationToken.None).ConfigureAwait(false);

            // Navigate from the blank page ourselves, then wait until that document (not the blank one) has loaded.
            var target = JsonSerializer.Serialize(url);
            await browser.CallAsync("Page.navigate", new Dictionary<string, object> { ["url"] = url }).ConfigureAwait(false);
            while (await browser.EvaluateAsync($"String(location.href === {target} && document.readyState === 'complete')").ConfigureAwait(false) != "true")
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"Chromium did not load {url}");
                }

                await Task.Delay(100).ConfigureAwait(false);
            }

            return browser;
        }
        catch
        {
            await browser.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page and returns its value as a string (JSON.stringify it for objects).</summary>
    public async Task<string?> EvaluateAsync(string expression)
    {
        var result = await CallAsync("Runtime.evaluate", new Dictionary<string, object> { ["expression"] = expression, ["returnByValue"] = true }).ConfigureAwait(false);
        if (result.TryGetProperty("exceptionDetails", out var error))
        {
            throw new InvalidOperationException($"page script failed: {error}");
        }

        var value = result.GetProperty("result");
        return value.TryGetProperty("value", out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText()) : null;
    }

    /// <summary>
    /// A PNG of the whole page (beyond the viewport): its width is the page's laid-out width, so anything that overflows
    /// the window sideways makes it wider than the window. Returns the PNG and its pixel width and height.
    /// </summary>
    public async Task<(byte[] Png, int Width, int Height)> ScreenshotAsync()
    {
        var metrics = await CallAsync("Page.getLayoutMetrics", []).ConfigureAwait(false);
        var content = metrics.GetProperty("cssContentSize");
        var result = await CallAsync("Page.captureScreenshot", new Dictionary<string, object>
        {
            ["format"] = "png", ["captureBeyondViewport"] = true,
            ["clip"] = new Dictionary<string, object> { ["x"] = 0, ["y"] = 0, ["width"] = content.GetProperty("width").GetDouble(), ["height"] = content.GetProperty("height").GetDouble(), ["scale"] = 1 },
        }).ConfigureAwait(false);
        var png = Convert.FromBase64String(result.GetProperty("data").GetString()!);
        // The IHDR chunk: width and height as big-endian 32-bit integers at bytes 16 and 20.
        return (png, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4)));
    }

    /// <summary>Sends one DevTools command and returns its result (events arriving meanwhile are skipped).</summary>
    public async Task<JsonElement> CallAsync(string method, Dictionary<string, object> parameters)
    {
        var id = Interlocked.Increment(ref _nextId);
        var request = JsonSerializer.Serialize(new Dictionary<string, object> { ["id"] = id, ["method"] = method, ["params"] = parameters });
        await _socket.SendAsync(Encoding.UTF8.GetBytes(request), WebSocketMessageType.Text, true, CancellationToken.None).ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            using var message = JsonDocument.Parse(await ReceiveAsync(timeout.Token).ConfigureAwait(false));
            if (!message.RootElement.TryGetProperty("id", out var got) || got.GetInt32() != id)
            {
                continue; // an event
            }

            if (message.RootElement.TryGetProperty("error", out var error))
            {
                throw new InvalidOperationException($"{method} failed: {error}");
            }

            return message.RootElement.GetProperty("result").Clone();
        }
    }

    private async Task<string> ReceiveAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 16];
        using var text = new MemoryStream();
        WebSocketReceiveResult result;
        do
        {
            result = await _socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            text.Write(buffer, 0, result.Count);
        }
        while (!result.EndOfMessage);
        return Encoding.UTF8.GetString(text.ToArray());
    }

    private static async Task<string> ReadEndpointAsync(Process process)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await process.StandardError.ReadLineAsync(timeout.Token).ConfigureAwait(false) is { } line)
        {
            var match = DevToolsLine().Match(line);
            if (match.Success)
            {
                return match.Groups[1].Value;
            }
        }

        throw new InvalidOperationException($"Chromium exited (code {(process.HasExited ? process.ExitCode : -1)}) before it opened the DevTools port");
    }

    [GeneratedRegex(@"DevTools listening on ws://([^/]+)/")]
    private static partial Regex DevToolsLine();

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (WebSocketException)
        {
            // The browser is going away anyway.
        }

        _socket.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_profileDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Chromium may still be flushing its profile; the temporary folder is cleaned with the rest.
        }
    }
}
