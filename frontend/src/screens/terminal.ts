// xterm.js and its fit addon, loaded only when a terminal opens.
import "@xterm/xterm/css/xterm.css";
export { Terminal } from "@xterm/xterm";
export { FitAddon } from "@xterm/addon-fit";
