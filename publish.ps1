# Publishes the ConfigSpec executables as native AOT (the same definition scripts/build.sh uses).
#   ./publish.ps1                     # linux-arm64 (Raspberry Pi 4B/5, Jetson)
#   ./publish.ps1 -Runtime linux-x64
#   ./publish.ps1 -Runtime linux-arm64 -LlamaPlatform linux-arm64 -Output out/arm64
param(
    [ValidateSet('linux-arm64', 'linux-x64')]
    [string]$Runtime = 'linux-arm64',
    [string]$LlamaPlatform = $Runtime,
    [string]$Output = (Join-Path $PSScriptRoot 'out/bin')
)
$ErrorActionPreference = 'Stop'
dotnet msbuild (Join-Path $PSScriptRoot 'scripts/publish.proj') -t:Publish "-p:Runtime=$Runtime" "-p:LlamaPlatform=$LlamaPlatform" "-p:OutputRoot=$Output/" -nologo -v:minimal
exit $LASTEXITCODE
