export * from './dead-letter.js';
