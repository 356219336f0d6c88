/** Catches render errors so a broken panel shows what went wrong instead of a blank page. */
import { Component, type ErrorInfo, type ReactNode } from 'react';

interface Props {
  /** What crashed, for the message ("Terminal", "Files", ...). */
  label: string;
  fullPage?: boolean;
  children: ReactNode;
}

export class ErrorBoundary extends Component<Props, { error: Error | null }> {
  override state = { error: null as Error | null };

  static getDerivedStateFromError(error: unknown) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  override componentDidCatch(error: Error, info: ErrorInfo) {
    console.error(`[berth] ${this.props.label} crashed`, error, info.componentStack);
  }

  override render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <div
        className={this.props.fullPage ? 'crash crash-page' : 'crash'}
        role="alert"
        data-testid="error-boundary"
      >
        <strong>{this.props.label} hit an error.</strong>
        <pre>{error.message}</pre>
        <div className="row">
          <button type="button" onClick={() => this.setState({ error: null })}>
            Try again
          </button>
          {this.props.fullPage && (
            <button type="button" onClick={() => location.reload()}>
              Reload page
            </button>
          )}
        </div>
      </div>
    );
  }
}
