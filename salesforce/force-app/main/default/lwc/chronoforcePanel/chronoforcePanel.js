// chronoforce's Chronopost panel for record pages (Order, Case, and the objects of other package
// directories): what chronoforce wrote (status, tracking, parcels, files, open exception) and the
// agent's actions, each through ChronoforceAgentController and chronoforce's /api/v1. A refusal
// shows as {code, message, field}.
import { LightningElement, api, wire } from 'lwc';
import { refreshApex } from '@salesforce/apex';
import getPanel from '@salesforce/apex/ChronoforceAgentController.getPanel';
import rates from '@salesforce/apex/ChronoforceAgentController.rates';
import chooseProduct from '@salesforce/apex/ChronoforceAgentController.chooseProduct';
import relayPoints from '@salesforce/apex/ChronoforceAgentController.relayPoints';
import chooseRelayPoint from '@salesforce/apex/ChronoforceAgentController.chooseRelayPoint';
import createLabel from '@salesforce/apex/ChronoforceAgentController.createLabel';
import reprintLabel from '@salesforce/apex/ChronoforceAgentController.reprintLabel';
import returnLabel from '@salesforce/apex/ChronoforceAgentController.returnLabel';
import bookPickup from '@salesforce/apex/ChronoforceAgentController.bookPickup';
import cancelLabel from '@salesforce/apex/ChronoforceAgentController.cancelLabel';
import addressReview from '@salesforce/apex/ChronoforceAgentController.addressReview';
import fixAddress from '@salesforce/apex/ChronoforceAgentController.fixAddress';
import { adviceFor, badgeOf, cancelWindow, refusalOf, stateOf, STATUS_LABELS } from './panelState';

export const RETURN_DELIVERY =
    'The return label is attached to the Case and the Order: send it to the customer from the Case ' +
    '(Email), to print and stick on the parcel, then drop at a Chronopost relay point or post office.';

export default class ChronoforcePanel extends LightningElement {
    @api recordId;
    // chronoforce's mapping.trigger_object: the actions name that record (Order, or Shipment).
    @api triggerObject = 'Order';

    panel;
    loadError;
    wiredPanel;
    busy = false;
    success = '';
    refusal;
    quotes;
    points;
    review;
    fixValues = {};
    showPickup = false;

    @wire(getPanel, { recordId: '$recordId' })
    receive(result) {
        this.wiredPanel = result;
        if (result.data) {
            this.panel = result.data;
            this.loadError = undefined;
        } else if (result.error) {
            this.panel = undefined;
            this.loadError = refusalOf(result.error);
        }
    }

    // --- what is shown --------------------------------------------------------------------

    get state() {
        return stateOf(this.panel);
    }
    get loaded() {
        return !!this.panel;
    }
    get badge() {
        return badgeOf(this.panel);
    }
    get noLabel() {
        return this.state === 'no_label';
    }
    get isDelivered() {
        return this.state === 'delivered';
    }
    get isReturn() {
        return this.state === 'return';
    }
    get hasException() {
        return !!(this.panel && this.panel.openException);
    }
    get advice() {
        return adviceFor(this.panel && this.panel.openException);
    }
    get hasParcels() {
        return !!(this.panel && this.panel.parcels && this.panel.parcels.length);
    }
    get hasEvents() {
        return !!(this.panel && this.panel.events && this.panel.events.length);
    }
    get timeline() {
        return (this.panel.events || []).map((e) => ({
            ...e,
            statusLabel: STATUS_LABELS[e.status] || e.status || ''
        }));
    }
    get lastEvent() {
        return this.panel && this.panel.lastEvent;
    }
    get labelUrl() {
        return fileUrl(this.panel && this.panel.labelFile);
    }
    get returnLabelUrl() {
        return fileUrl(this.panel && this.panel.returnLabelFile);
    }
    get podUrl() {
        return fileUrl(this.panel && this.panel.proofOfDelivery);
    }
    get podWaiting() {
        // Chronopost_POD_Status__c while there is no file: Pending, Not eligible, Gave up, …
        return Boolean(this.panel && this.panel.podStatus && !this.podUrl);
    }
    get orderId() {
        if (!this.panel) {
            return undefined;
        }
        return this.triggerObject === 'Shipment' ? this.panel.shipmentId : this.panel.orderId;
    }
    get noOrder() {
        return !this.orderId;
    }
    get noOrderReason() {
        if (!this.loaded || !this.noOrder) {
            return '';
        }
        return this.triggerObject === 'Shipment'
            ? 'No Shipment is linked to this record: chronoforce ships Shipments here.'
            : 'No Order is linked to this record.';
    }
    get cancel() {
        return cancelWindow(this.panel);
    }
    get cancelDisabled() {
        return this.busy || this.noOrder || !this.cancel.open;
    }
    get labelDisabled() {
        return this.busy || this.noOrder || this.hasParcels;
    }
    get reprintDisabled() {
        return this.busy || this.noOrder || !this.hasParcels;
    }
    get actionDisabled() {
        return this.busy || this.noOrder;
    }
    get refusalField() {
        return this.refusal && this.refusal.field;
    }
    get mapMarkers() {
        return (this.points || []).map((p) => ({
            location: {
                Street: p.address.line1,
                PostalCode: p.address.postal_code,
                City: p.address.city,
                Country: p.address.country
            },
            title: p.name,
            description: (p.opening_hours || []).join(', '),
            value: p.id
        }));
    }
    get pointRows() {
        return (this.points || []).map((p) => ({
            ...p,
            distance: p.distance_m == null ? '' : `${(p.distance_m / 1000).toFixed(1)} km`,
            hours: (p.opening_hours || []).join(' · ')
        }));
    }
    get quoteRows() {
        const chosen = this.quotes && this.quotes.chosen && this.quotes.chosen.product_code;
        return ((this.quotes && this.quotes.products) || []).map((q) => ({
            ...q,
            promised: [q.promised_date, q.promised_before].filter(Boolean).join(' before '),
            isChosen: q.product_code === chosen
        }));
    }
    get routingReason() {
        if (!this.quotes) {
            return '';
        }
        return this.quotes.chosen ? this.quotes.chosen.reason : this.quotes.routing_error;
    }

    // --- actions ----------------------------------------------------------------------------

    async run(work, done) {
        this.busy = true;
        this.success = '';
        this.refusal = undefined;
        try {
            const answer = await work();
            this.success = done(answer);
            if (this.wiredPanel) {
                await refreshApex(this.wiredPanel);
            }
            return answer;
        } catch (error) {
            this.refusal = refusalOf(error);
            return undefined;
        } finally {
            this.busy = false;
        }
    }

    handleRates() {
        return this.run(
            () => rates({ orderId: this.orderId }),
            (answer) => {
                this.quotes = answer;
                return `${answer.products.length} Chronopost product(s) for this order.`;
            }
        );
    }

    handleChooseProduct(event) {
        const productCode = event.target.dataset.code;
        return this.run(
            () => chooseProduct({ orderId: this.orderId, productCode }),
            (written) => `Product ${written.product_code} written to the order, shipping cost ${written.shipping_cost}.`
        );
    }

    handleRelayPoints() {
        return this.run(
            () => relayPoints({ orderId: this.orderId }),
            (found) => {
                this.points = found;
                return `${found.length} relay point(s) near the shipping address.`;
            }
        );
    }

    handleChooseRelayPoint(event) {
        const relayPointId = event.target.dataset.id || (event.detail && event.detail.selectedMarkerValue);
        return this.run(
            () => chooseRelayPoint({ orderId: this.orderId, relayPointId }),
            () => `Relay point ${relayPointId} written to the order: the label goes there.`
        );
    }

    handleCreateLabel() {
        return this.run(
            () => createLabel({ orderId: this.orderId }),
            (made) =>
                made.created
                    ? `Label created: ${made.skybill_numbers.join(', ')}.`
                    : `The order already has a label: ${made.skybill_numbers.join(', ')}.`
        );
    }

    handleReprint() {
        return this.run(
            () => reprintLabel({ orderId: this.orderId }),
            (copies) => {
                copies.labels.forEach((copy) => openLabel(copy));
                return `${copies.labels.length} label(s) opened for printing.`;
            }
        );
    }

    handleReturn() {
        const recordId = (this.panel && this.panel.caseId) || this.orderId;
        return this.run(
            () => returnLabel({ recordId }),
            (made) => `Return label ${made.skybill_numbers.join(', ')} (reference ${made.returns_reference}). ${RETURN_DELIVERY}`
        );
    }

    handleShowPickup() {
        this.showPickup = !this.showPickup;
    }

    handleBookPickup() {
        const value = (name) => {
            const input = this.template.querySelector(`lightning-input[data-name="${name}"]`);
            return input ? input.value : undefined;
        };
        return this.run(
            () =>
                bookPickup({
                    orderId: this.orderId,
                    pickupDate: value('date'),
                    readyTime: value('ready'),
                    closingTime: value('closing'),
                    instructions: value('instructions') || ''
                }),
            (booked) => {
                this.showPickup = false;
                return `Pickup ${booked.pickup_number} booked for ${booked.skybill_numbers.length} parcel(s).`;
            }
        );
    }

    handleCancel() {
        return this.run(
            () => cancelLabel({ orderId: this.orderId, intent: 'outbound' }),
            (done) => `Cancelled: ${done.cancelled.join(', ') || 'nothing left to cancel'}.`
        );
    }

    handleReview() {
        return this.run(
            () => addressReview({ orderId: this.orderId }),
            (review) => {
                this.review = review;
                this.fixValues = {};
                review.fields.forEach((f) => {
                    this.fixValues[f.sf_field] = f.value;
                });
                return '';
            }
        );
    }

    handleFixInput(event) {
        this.fixValues = { ...this.fixValues, [event.target.dataset.field]: event.target.value };
    }

    handleCandidate(event) {
        const { postal, city } = event.target.dataset;
        const values = { ...this.fixValues };
        this.review.fields.forEach((f) => {
            if (f.label === 'Postal code') {
                values[f.sf_field] = postal;
            } else if (f.label === 'City') {
                values[f.sf_field] = city;
            }
        });
        this.fixValues = values;
        this.review = {
            ...this.review,
            fields: this.review.fields.map((f) => ({ ...f, value: values[f.sf_field] }))
        };
    }

    handleFixAddress() {
        return this.run(
            () => fixAddress({ orderId: this.orderId, values: this.fixValues }),
            (fixed) => {
                this.review = undefined;
                return `Address corrected in Salesforce (${fixed.fields.join(', ')}); the label is retried.`;
            }
        );
    }
}

function fileUrl(file) {
    return file ? `/lightning/r/ContentDocument/${file.documentId}/view` : '';
}

function openLabel(copy) {
    const bytes = atob(copy.content_base64);
    const buffer = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
        buffer[i] = bytes.charCodeAt(i);
    }
    const type = copy.file_name.endsWith('.pdf') ? 'application/pdf' : 'application/octet-stream';
    const url = URL.createObjectURL(new Blob([buffer], { type }));
    window.open(url, '_blank');
}
