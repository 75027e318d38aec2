/**
 * Names of the operator's custom resources for a JetStream stream / consumer, as the chart
 * renders them (charts/orderflow/templates/jetstream.yaml): Stream `<stream lower, _→->`,
 * Consumer `<stream resource>-<durable>`. `kubectl get` takes these.
 */
export const CR_GROUP = 'jetstream.orderflow.dev';

export function streamResourceName(stream: string): string {
  return stream.toLowerCase().replace(/_/g, '-');
}

export function consumerResourceName(stream: string, durable: string): string {
  return `${streamResourceName(stream)}-${durable}`;
}

export function kubectlGet(kind: 'streams' | 'consumers', name: string): string {
  return `kubectl get ${kind}.${CR_GROUP} ${name} -o yaml`;
}
