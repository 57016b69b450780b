// Entry point: start the client on the page (index.html loads this as a module).
import { App } from './App.js';

const app = new App(document);
app.start();
