export { createConsoleApp, bearerAuth, type ConsoleDeps, type ConsoleState } from './app.js';
export { startConsole, runConsole, type RunningConsole, type StartConsoleOptions } from './server.js';
export { consoleConfig, type ConsoleConfig } from './config.js';
export { DeadLetters, type DeadLetterView, type DeadLetterGroup } from './dlq.js';
export { JetStreamSampler, isGrowing, type StreamView, type ConsumerView } from './sources/jetstream.js';
export { ServicesClient } from './sources/services.js';
export { orderTimeline, traceIdOf, type TimelineEvent } from './sources/timeline.js';
export { parsePrometheus, histogramBuckets, histogramQuantile, bucketDelta } from './sources/prometheus.js';
export { streamResourceName, consumerResourceName } from './resources.js';
