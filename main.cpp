// Placeholder replaced by the CLI entry point below once machine/ exists.
int main() { return 1; }
