# Publishes the ConfigSpec executables as native AOT through the same definition scripts/build.sh uses
# (scripts/publish.proj) and prints where the binaries and llama.cpp libraries are and how to install the board service.
#   ./publish.ps1                          # linux-arm64, the boards' build (Raspberry Pi 4B/5, Jetson): out/linux-arm64/
#   ./publish.ps1 -Runtime linux-x64       # this machine's build of every executable: out/bin/
#   ./publish.ps1 -Runtime linux-arm64 -LlamaPlatform linux-arm64 -Output out/arm64
# Cross-compiling for linux-arm64 from x86-64 needs clang and Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross
# (scripts/build.sh linux-arm64 installs them); the llama.cpp libraries come from scripts/fetch-llama.sh RUNTIME.
param(
    [ValidateSet('linux-arm64', 'linux-x64')]
    [string]$Runtime = 'linux-arm64',
    [string]$LlamaPlatform = $Runtime,
    [string]$Output = '',
    [ValidateSet('', 'all', 'board')]
    [string]$Executables = ''
)
$ErrorActionPreference = 'Stop'
$arguments = @((Join-Path $PSScriptRoot 'scripts/publish.proj'), '-t:Publish', "-p:Runtime=$Runtime", "-p:LlamaPlatform=$LlamaPlatform", '-nologo', '-v:minimal')
if ($Output) {
    $Output = [System.IO.Path]::GetFullPath($Output)
    $arguments += "-p:OutputRoot=$Output/"
}
if ($Executables) {
    $arguments += "-p:Executables=$Executables"
}
dotnet msbuild @arguments
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
# Without -Output, publish.proj chooses the folder (out/bin/ for this machine's runtime, out/<runtime>/ otherwise) and
# names it above, with the install command.
if ($Output) {
    Write-Host "binaries and llama.cpp libraries: $Output"
}
Write-Host "or one tarball for the board: scripts/build.sh $Runtime --package"
exit 0
